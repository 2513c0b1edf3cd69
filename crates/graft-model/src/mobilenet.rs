//! The MobileNetV2 feature extractor (torchvision `features`, 19 layers, 1280-d pooled output).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::blocks::{ConvBn, ConvSpec, InvertedResidual, LayerNames};
use crate::source::WeightSource;
use crate::weights::{NamedTensor, WeightError};

/// Width of the pooled feature vector fed to the classifier.
pub const FEATURE_DIM: usize = 1280;
/// Number of logits of the pretrained ImageNet classifier.
pub const IMAGENET_CLASSES: usize = 1000;

/// (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
const INVERTED_RESIDUAL_SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// Index of the last `features.N` layer (the 1x1 conv to 1280 channels).
pub const LAST_FEATURE_INDEX: usize = 18;

#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// `features.0`: 3x3 stride-2 conv, 3 → 32 channels.
    pub stem: ConvBn,
    /// `features.1` ..= `features.17`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.18`: 1x1 conv, 320 → 1280 channels.
    pub last: ConvBn,
}

impl MobileNetV2 {
    /// Builds the backbone from torchvision-named weights (`features.*`); other names are ignored.
    pub fn load(weights: &impl WeightSource, device: &Device) -> Result<Self, WeightError> {
        let mut plan = mobilenet_v2_plan();
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
        Ok(Self { stem, blocks, last })
    }

    /// Images `[N, 3, H, W]` (normalised) → pooled features `[N, 1280]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        #[cfg(feature = "gpu")]
        if crate::gpu::path::applies(&images) {
            return crate::gpu::path::pool_nhwc(crate::gpu::path::feature_map_nhwc(self, images));
        }
        Self::pool(self.feature_map(images))
    }

    /// The last block's activations before pooling: `[N, 1280, H/32, W/32]` (what Grad-CAM
    /// explains).
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        // On a GPU the whole pass runs in NHWC (see `gpu::path`); the map comes back as a
        // permuted view with NCHW dims.
        #[cfg(feature = "gpu")]
        if crate::gpu::path::applies(&images) {
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
            stem: self.stem.folded(),
            blocks: self.blocks.iter().map(InvertedResidual::folded).collect(),
            last: self.last.folded(),
        }
    }

    pub fn export(&self, out: &mut Vec<NamedTensor>) {
        let stem = LayerNames::norm_activation("features.0");
        self.stem.export(&stem.conv, &stem.bn, out);
        for (i, block) in self.blocks.iter().enumerate() {
            block.export(&format!("features.{}", i + 1), out);
        }
        let last = LayerNames::norm_activation(&format!("features.{LAST_FEATURE_INDEX}"));
        self.last.export(&last.conv, &last.bn, out);
    }

    /// Number of `features.N` layers (stem + blocks + last), for per-layer learning rates.
    pub fn num_layers(&self) -> usize {
        self.blocks.len() + 2
    }
}

/// One convolution of the network with its BatchNorm: shape, activation and torchvision names.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    pub spec: ConvSpec,
    pub names: LayerNames,
}

/// One `features.N` layer: its convolutions in order, and whether its input is added back.
#[derive(Debug, Clone)]
pub struct PlannedBlock {
    pub layers: Vec<PlannedLayer>,
    pub residual: bool,
}

/// MobileNetV2's `features` as data — stem, 17 inverted residuals, the last 1x1 conv — the one
/// description the model is built from and other formats (ONNX) are written from.
pub fn mobilenet_v2_plan() -> Vec<PlannedBlock> {
    let single = |spec: ConvSpec, prefix: &str| PlannedBlock {
        layers: vec![PlannedLayer { spec, names: LayerNames::norm_activation(prefix) }],
        residual: false,
    };
    let stem_spec = ConvSpec { c_in: 3, c_out: 32, kernel: 3, stride: 2, groups: 1, relu6: true };
    let mut plan = vec![single(stem_spec, "features.0")];
    let mut c_in = 32;
    for (t, c, n, s) in INVERTED_RESIDUAL_SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let prefix = format!("features.{}", plan.len());
            let specs = InvertedResidual::specs(c_in, c, stride, t);
            let names = InvertedResidual::names(&prefix, specs.len());
            let layers = specs.into_iter().zip(names).map(|(spec, names)| PlannedLayer { spec, names }).collect();
            plan.push(PlannedBlock { layers, residual: stride == 1 && c_in == c });
            c_in = c;
        }
    }
    let last_spec = ConvSpec { c_in, c_out: FEATURE_DIM, kernel: 1, stride: 1, groups: 1, relu6: true };
    plan.push(single(last_spec, &format!("features.{LAST_FEATURE_INDEX}")));
    plan
}
