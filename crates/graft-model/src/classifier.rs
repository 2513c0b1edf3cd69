//! Backbone + head: the model a user trains, exports and predicts with.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::arch::Architecture;
use crate::backbone::Backbone;
use crate::head::{Head, HeadKind, HeadSpec};
use crate::source::{RandomWeights, WeightSource};
use crate::weights::{NamedTensor, WeightError, WeightMap};

#[derive(Module, Debug)]
pub struct ImageClassifier {
    pub backbone: Backbone,
    pub head: Head,
}

impl ImageClassifier {
    /// Pretrained backbone (of the architecture the weights are for) with a new head built from
    /// `spec` (the ImageNet head is dropped unless the spec asks to keep or stack on it).
    pub fn from_pretrained(
        pretrained: &impl WeightSource,
        spec: &HeadSpec,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let arch = pretrained.architecture();
        Ok(Self {
            backbone: Backbone::load(arch, pretrained, device)?,
            head: Head::new(arch, spec, pretrained, device)?,
        })
    }

    /// A randomly initialised MobileNetV2 (see [`RandomWeights`]) with a replaced head: for tests
    /// of training mechanics, where pretrained knowledge does not matter.
    pub fn random(num_classes: usize, seed: u64, device: &Device) -> Result<Self, WeightError> {
        Self::random_arch(Architecture::MobileNetV2, num_classes, seed, device)
    }

    /// [`ImageClassifier::random`] for any architecture.
    pub fn random_arch(
        arch: Architecture,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let spec = HeadSpec { kind: HeadKind::Replace, num_classes, seed };
        Self::from_pretrained(&RandomWeights::for_arch(arch, seed), &spec, device)
    }

    /// A model exported by graft (backbone and trained head both from `weights`).
    pub fn from_export(
        weights: &impl WeightSource,
        kind: &HeadKind,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let arch = weights.architecture();
        Ok(Self {
            backbone: Backbone::load(arch, weights, device)?,
            head: Head::load(arch, kind, num_classes, weights, device)?,
        })
    }

    /// An inference-only copy (BatchNorm folded into the convolutions): for prediction.
    pub fn folded(&self) -> Self {
        Self { backbone: self.backbone.folded(), head: self.head.clone() }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }

    pub fn arch(&self) -> Architecture {
        self.backbone.arch
    }

    /// Every parameter and BatchNorm statistic under its checkpoint name.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        self.backbone.export(&mut out);
        self.head.export(&mut out);
        out
    }

    /// The head's parameters only (checkpoint names).
    pub fn head_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        self.head.export(&mut out);
        out
    }

    /// Reads the whole model back to the host (async: safe on WebGPU).
    pub async fn to_weight_map(&self) -> Result<WeightMap, WeightError> {
        NamedTensor::read_all(self.named_tensors()).await
    }
}
