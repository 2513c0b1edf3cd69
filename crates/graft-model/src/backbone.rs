//! The pretrained feature extractor of either architecture: stem, inverted residual blocks and a
//! last 1x1 conv to 1280 channels, built from the architecture's plan and its checkpoint names.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::arch::Architecture;
use crate::blocks::{ConvBn, InvertedResidual};
use crate::mobilenet::PlannedLayer;
use crate::source::WeightSource;
use crate::weights::{NamedTensor, WeightError};

#[derive(Module, Debug)]
pub struct Backbone {
    /// Which network this is: its plan and tensor names.
    #[module(skip)]
    pub arch: Architecture,
    /// The first 3x3 stride-2 conv, 3 → 32 channels (`features.0` / `_conv_stem`).
    pub stem: ConvBn,
    /// The inverted residual blocks (`features.1..=17` / `_blocks.0..=15`).
    pub blocks: Vec<InvertedResidual>,
    /// The 1x1 conv to 1280 channels (`features.18` / `_conv_head`).
    pub last: ConvBn,
}

impl Backbone {
    /// Builds `arch`'s backbone from its checkpoint-named tensors; other names are ignored.
    pub fn load(arch: Architecture, weights: &impl WeightSource, device: &Device) -> Result<Self, WeightError> {
        let mut plan = arch.plan();
        let load_layer = |l: &PlannedLayer| ConvBn::load(l.spec, &l.names.conv, &l.names.bn, weights, device);
        let last = plan.pop().ok_or_else(|| WeightError::Mismatch("empty plan".into()))?;
        let last = load_layer(&last.layers[0])?;
        let stem = load_layer(&plan.remove(0).layers[0])?;
        let blocks = plan
            .iter()
            .map(|b| {
                let layers = b.layers.iter().map(load_layer).collect::<Result<Vec<_>, _>>()?;
                Ok(InvertedResidual { layers, residual: b.residual })
            })
            .collect::<Result<Vec<_>, WeightError>>()?;
        Ok(Self { arch, stem, blocks, last })
    }

    /// Images `[N, 3, H, W]` (normalised) → pooled features `[N, 1280]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        #[cfg(feature = "gpu")]
        if self.gpu_path(&images) {
            return crate::gpu::path::pool_nhwc(crate::gpu::path::feature_map_nhwc(self, images));
        }
        Self::pool(self.feature_map(images))
    }

    /// Whether this pass takes the hand-written GPU path: MobileNetV2's layers on a CubeCL
    /// device (its kernels are 3x3 with PyTorch padding; EfficientNet-Lite0 runs burn's ops).
    #[cfg(feature = "gpu")]
    fn gpu_path(&self, images: &Tensor<4>) -> bool {
        self.arch == Architecture::MobileNetV2 && crate::gpu::path::applies(images)
    }

    /// The last block's activations before pooling: `[N, 1280, H/32, W/32]` (what Grad-CAM
    /// explains).
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        // On a GPU the whole pass runs in NHWC (see `gpu::path`); the map comes back as a
        // permuted view with NCHW dims.
        #[cfg(feature = "gpu")]
        if self.gpu_path(&images) {
            return crate::gpu::path::feature_map_nhwc(self, images).permute([0, 3, 1, 2]);
        }
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.last.forward(x)
    }

    /// Global average pool over H and W.
    pub fn pool(map: Tensor<4>) -> Tensor<2> {
        map.mean_dim(3).mean_dim(2).flatten(1, 3)
    }

    /// An inference-only copy with every BatchNorm folded into its convolution: the same
    /// outputs (up to rounding) in fewer passes. Train and export the original.
    pub fn folded(&self) -> Self {
        Self {
            arch: self.arch,
            stem: self.stem.folded(),
            blocks: self.blocks.iter().map(InvertedResidual::folded).collect(),
            last: self.last.folded(),
        }
    }

    /// Every tensor under its checkpoint name, in network order.
    pub fn export(&self, out: &mut Vec<NamedTensor>) {
        let layers = std::iter::once(&self.stem)
            .chain(self.blocks.iter().flat_map(|b| &b.layers))
            .chain(std::iter::once(&self.last));
        let planned = self.arch.plan().into_iter().flat_map(|b| b.layers);
        for (layer, planned) in layers.zip(planned) {
            layer.export(&planned.names.conv, &planned.names.bn, out);
        }
    }

    /// Number of layer groups (stem + blocks + last), for per-layer learning rates.
    pub fn num_layers(&self) -> usize {
        self.blocks.len() + 2
    }
}
