//! Pretrained backbones (MobileNetV2, EfficientNet-Lite0), replaceable classifier heads and
//! checkpoint-named weights.
//!
//! Parameter names follow each checkpoint's PyTorch module (torchvision's `features.N...`,
//! `classifier.1`; `efficientnet_pytorch`'s `_blocks.N...`, `_fc`) so that a backbone loads from
//! its published checkpoint and exported weights load back into PyTorch.

mod arch;
mod backbone;
mod blocks;
pub mod checkpoint;
mod classifier;
mod cores;
pub mod depthwise;
pub mod depthwise_general;
mod efficientnet;
mod flex_fast;
pub mod fused_adamw;
#[cfg(feature = "gpu")]
pub mod gpu;
mod head;
pub mod kernel_check;
#[cfg(test)]
mod kernel_test_data;
pub mod launches;
mod mobilenet;
pub mod pytorch;
pub mod small_conv;
mod source;
mod weights;

pub use arch::Architecture;
pub use backbone::Backbone;
pub use blocks::{ConvSpec, LayerNames, Padding};
pub use checkpoint::{CheckpointError, StartingCheckpoint};
pub use classifier::ImageClassifier;
pub use efficientnet::efficientnet_lite0_plan;
pub use head::{Head, HeadKind, HeadSpec};
pub use mobilenet::{mobilenet_v2_plan, PlannedBlock, PlannedLayer, FEATURE_DIM, IMAGENET_CLASSES};
pub use source::{RandomWeights, WeightSource};
pub use weights::{NamedTensor, StoredAs, WeightError, WeightMap};

/// ImageNet class names, in the order of the 1000 logits of the pretrained classifier.
pub fn imagenet_labels() -> Vec<&'static str> {
    include_str!("imagenet_labels.txt").lines().collect()
}

/// The ImageNet row of every class name (case-insensitive, `_`/`-` read as spaces), or `None`
/// if any class is not an ImageNet class: the condition for offering "keep the head".
pub fn imagenet_rows_for(classes: &[String]) -> Option<Vec<usize>> {
    let labels = imagenet_labels();
    let norm = |s: &str| s.trim().to_lowercase().replace(['_', '-'], " ");
    classes.iter().map(|c| labels.iter().position(|l| norm(l) == norm(c))).collect()
}
