//! Which pretrained network a model is built on: its layer plan, its tensor names, the name of
//! its ImageNet classifier and the input normalisation its weights were trained with.

use graft_data::Normalization;
use serde::{Deserialize, Serialize};

use crate::blocks::ConvSpec;
use crate::efficientnet::efficientnet_lite0_plan;
use crate::mobilenet::{mobilenet_v2_plan, PlannedBlock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Architecture {
    /// torchvision's MobileNetV2 (3.5 M parameters, 71.9 % ImageNet top-1).
    #[default]
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
    /// EfficientNet-Lite0 (4.7 M parameters, 75.1 % top-1): EfficientNet-B0 without
    /// squeeze-excitation, with ReLU6, 5×5 depthwise convolutions in three stages and
    /// TensorFlow's SAME padding; `efficientnet_pytorch` names.
    #[serde(rename = "efficientnet_lite0")]
    EfficientNetLite0,
}

impl Architecture {
    pub const ALL: [Self; 2] = [Self::MobileNetV2, Self::EfficientNetLite0];

    /// The name in manifests, project files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet_v2",
            Self::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    /// The name people read.
    pub fn title(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "MobileNetV2",
            Self::EfficientNetLite0 => "EfficientNet-Lite0",
        }
    }

    /// ImageNet top-1 accuracy of the pretrained weights, as published with them (percent).
    pub fn imagenet_top1(self) -> f32 {
        match self {
            Self::MobileNetV2 => 71.9,
            Self::EfficientNetLite0 => 75.1,
        }
    }

    /// The convolutions of the backbone, in network order, with their tensor names.
    pub fn plan(self) -> Vec<PlannedBlock> {
        match self {
            Self::MobileNetV2 => mobilenet_v2_plan(),
            Self::EfficientNetLite0 => efficientnet_lite0_plan(),
        }
    }

    /// Name prefix of head layer `index`: the pretrained ImageNet classifier is layer 0
    /// (`classifier.1` / `_fc`); the stacked experiment's new layer is layer 1.
    pub fn head_layer(self, index: usize) -> String {
        match (self, index) {
            (Self::MobileNetV2, i) => format!("classifier.{}", i + 1),
            (Self::EfficientNetLite0, 0) => "_fc".into(),
            (Self::EfficientNetLite0, i) => format!("_fc{}", i + 1),
        }
    }

    /// Whether `name` is one of the backbone's tensors (not the classifier's).
    pub fn is_backbone_tensor(self, name: &str) -> bool {
        match self {
            Self::MobileNetV2 => name.starts_with("features."),
            Self::EfficientNetLite0 => {
                ["_conv_stem.", "_bn0.", "_blocks.", "_conv_head.", "_bn1."].iter().any(|p| name.starts_with(p))
            }
        }
    }

    /// The input normalisation the pretrained weights expect, on pixels scaled to [0, 1]:
    /// torchvision's ImageNet statistics, or Lite's `(x − 127) / 128` on 0..255 pixels.
    pub fn normalization(self) -> Normalization {
        match self {
            Self::MobileNetV2 => Normalization::IMAGENET,
            Self::EfficientNetLite0 => {
                let (mean, std) = (127.0 / 255.0, 128.0 / 255.0);
                Normalization { mean: [mean; 3], std: [std; 3] }
            }
        }
    }

    /// The file `scripts/setup.sh` converts the pretrained weights to, under `static/weights/`.
    pub fn weights_file(self) -> String {
        format!("{}.safetensors", self.name())
    }

    /// The architecture whose stem tensor is among `names`, if any.
    pub fn detect<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<Self> {
        names.find_map(|n| Self::ALL.into_iter().find(|a| n == a.stem_weight()))
    }

    fn stem_weight(self) -> String {
        format!("{}.weight", self.plan()[0].layers[0].names.conv)
    }

    /// Every convolution's shape, in network order.
    pub fn conv_specs(self) -> Vec<ConvSpec> {
        self.plan().into_iter().flat_map(|b| b.layers.into_iter().map(|l| l.spec)).collect()
    }

    /// Trainable parameters with the ImageNet classifier: convolution weights, BatchNorm γ/β and
    /// the 1280 → 1000 linear layer.
    pub fn parameters(self) -> usize {
        let convs: usize =
            self.conv_specs().iter().map(|s| s.c_out * s.c_in / s.groups * s.kernel * s.kernel + 2 * s.c_out).sum();
        convs + crate::FEATURE_DIM * crate::IMAGENET_CLASSES + crate::IMAGENET_CLASSES
    }

    /// One line for a chooser: size, work per picture and ImageNet accuracy.
    pub fn summary(self) -> String {
        #[allow(clippy::cast_precision_loss)] // shown with one decimal
        let (params, macs) = (self.parameters() as f64 / 1e6, self.multiply_adds(224) as f64 / 1e6);
        format!(
            "{:.1} M parameters, {macs:.0} M multiply-adds per picture, {:.1} % ImageNet top-1",
            params,
            self.imagenet_top1()
        )
    }

    /// Multiply-adds of one forward pass (backbone and ImageNet classifier) on a `size`×`size`
    /// image: every convolution's output positions × its kernel taps over its input channels.
    pub fn multiply_adds(self, size: usize) -> u64 {
        let mut side = size;
        let mut total = (crate::FEATURE_DIM * crate::IMAGENET_CLASSES) as u64;
        for s in self.conv_specs() {
            side = s.output_side(side);
            total += (side * side * s.c_out * s.c_in / s.groups * s.kernel * s.kernel) as u64;
        }
        total
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
            format!("unknown backbone `{s}` ({})", known.join(" | "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_detect_the_stem() {
        for arch in Architecture::ALL {
            assert_eq!(arch.name().parse::<Architecture>(), Ok(arch));
            let json = serde_json::to_string(&arch).unwrap();
            assert_eq!(json, format!("\"{}\"", arch.name()));
            let stem = arch.stem_weight();
            assert_eq!(Architecture::detect(["x.weight", stem.as_str()].into_iter()), Some(arch));
        }
        assert!("resnet50".parse::<Architecture>().unwrap_err().contains("mobilenet_v2 | efficientnet_lite0"));
    }

    /// MobileNetV2's paper counts 300 M multiply-adds; EfficientNet-B0's 390 M less its
    /// squeeze-excitation leaves Lite0 at ~385 M.
    #[test]
    fn multiply_adds_match_the_papers() {
        let m = |a: Architecture| a.multiply_adds(224) as f64 / 1e6;
        assert!((295.0..305.0).contains(&m(Architecture::MobileNetV2)), "{}", m(Architecture::MobileNetV2));
        assert!((380.0..390.0).contains(&m(Architecture::EfficientNetLite0)), "{}", m(Architecture::EfficientNetLite0));
    }

    /// torchvision counts 3,504,872 parameters in MobileNetV2.
    #[test]
    fn parameters_match_torchvisions_count() {
        assert_eq!(Architecture::MobileNetV2.parameters(), 3_504_872);
        assert!(Architecture::EfficientNetLite0.summary().starts_with("4.7 M parameters, 385 M multiply-adds"));
    }

    #[test]
    fn backbone_tensors_are_told_from_the_classifiers() {
        let lite = Architecture::EfficientNetLite0;
        assert!(lite.is_backbone_tensor("_blocks.3._bn1.weight") && lite.is_backbone_tensor("_bn1.bias"));
        assert!(!lite.is_backbone_tensor("_fc.weight"));
        assert_eq!(lite.head_layer(0), "_fc");
        assert_eq!(Architecture::MobileNetV2.head_layer(1), "classifier.2");
    }
}
