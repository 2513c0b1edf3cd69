//! MobileNetV2's plan (torchvision `features`, 19 layers, 1280-d pooled output), and the plan
//! types every backbone is described with.

use crate::blocks::{ConvSpec, InvertedResidual, LayerNames, Padding};

/// Width of the pooled feature vector fed to the classifier.
pub const FEATURE_DIM: usize = 1280;
/// Number of logits of the pretrained ImageNet classifier.
pub const IMAGENET_CLASSES: usize = 1000;

/// (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
const INVERTED_RESIDUAL_SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// Index of the last `features.N` layer (the 1x1 conv to 1280 channels).
pub const LAST_FEATURE_INDEX: usize = 18;

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
    let conv = |c_in, c_out, kernel, stride| ConvSpec {
        c_in,
        c_out,
        kernel,
        stride,
        groups: 1,
        relu6: true,
        padding: Padding::Centered,
        bn_eps: 1e-5,
    };
    let stem_spec = conv(3, 32, 3, 2);
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
    let last_spec = conv(c_in, FEATURE_DIM, 1, 1);
    plan.push(single(last_spec, &format!("features.{LAST_FEATURE_INDEX}")));
    plan
}
