//! EfficientNet-Lite0's `features` as a plan: the same three kinds of layer as MobileNetV2
//! (stem, inverted-residual "MBConv" blocks, a last 1x1 conv to 1280 channels), with 5×5
//! depthwise convolutions in three stages, TensorFlow's SAME padding, BatchNorm ε = 1e-3 and
//! `efficientnet_pytorch`'s tensor names (`_conv_stem`, `_blocks.N._depthwise_conv`, …).
//!
//! The Lite variants drop EfficientNet's squeeze-excitation and swish for ReLU6 (so that they
//! quantise well), which is exactly the layer set graft's kernels already cover.

use crate::blocks::{ConvSpec, LayerNames, Padding};
use crate::mobilenet::{PlannedBlock, PlannedLayer, FEATURE_DIM};

/// (expansion, kernel, first stride, output channels, repeats) of each stage: EfficientNet-B0's
/// at width and depth 1.0.
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
];

/// TensorFlow's BatchNorm epsilon, which the weights were trained with.
const BN_EPS: f64 = 1e-3;

fn spec(c_in: usize, c_out: usize, kernel: usize, stride: usize, groups: usize, relu6: bool) -> ConvSpec {
    ConvSpec { c_in, c_out, kernel, stride, groups, relu6, padding: Padding::Same, bn_eps: BN_EPS }
}

fn layer(spec: ConvSpec, conv: &str, bn: &str) -> PlannedLayer {
    PlannedLayer { spec, names: LayerNames { conv: conv.into(), bn: bn.into() } }
}

/// Stem, 16 MBConv blocks, head conv.
pub fn efficientnet_lite0_plan() -> Vec<PlannedBlock> {
    let single = |l: PlannedLayer| PlannedBlock { layers: vec![l], residual: false };
    let mut plan = vec![single(layer(spec(3, 32, 3, 2, 1, true), "_conv_stem", "_bn0"))];
    let mut c_in = 32;
    let mut index = 0;
    for (expand, kernel, first_stride, c_out, repeats) in STAGES {
        for r in 0..repeats {
            let stride = if r == 0 { first_stride } else { 1 };
            let p = format!("_blocks.{index}");
            let hidden = c_in * expand;
            let mut layers = Vec::new();
            if expand != 1 {
                layers.push(layer(
                    spec(c_in, hidden, 1, 1, 1, true),
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                ));
            }
            let depthwise = spec(hidden, hidden, kernel, stride, hidden, true);
            layers.push(layer(depthwise, &format!("{p}._depthwise_conv"), &format!("{p}._bn1")));
            layers.push(layer(
                spec(hidden, c_out, 1, 1, 1, false),
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
            ));
            plan.push(PlannedBlock { layers, residual: stride == 1 && c_in == c_out });
            c_in = c_out;
            index += 1;
        }
    }
    plan.push(single(layer(spec(c_in, FEATURE_DIM, 1, 1, 1, true), "_conv_head", "_bn1")));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_efficientnet_pytorchs_tensors_and_4_7m_parameters() {
        let plan = efficientnet_lite0_plan();
        assert_eq!(plan.len(), 18, "stem, 16 blocks, head conv");
        let layers: Vec<&PlannedLayer> = plan.iter().flat_map(|b| &b.layers).collect();
        // Five tensors per layer (conv weight, BatchNorm's four) and `_fc`'s two: the
        // checkpoint's 296 less its 49 `num_batches_tracked` counters.
        assert_eq!(5 * layers.len() + 2, 296 - 49);
        let conv: usize =
            layers.iter().map(|l| l.spec.c_out * l.spec.c_in / l.spec.groups * l.spec.kernel.pow(2)).sum();
        let bn: usize = layers.iter().map(|l| 2 * l.spec.c_out).sum();
        let params = conv + bn + 1280 * 1000 + 1000;
        assert!((4_600_000..4_700_000).contains(&params), "{params}");
        assert_eq!(layers[2].names.conv, "_blocks.0._project_conv");
        assert_eq!(layers[2].names.bn, "_blocks.0._bn2");
        assert_eq!(plan.iter().filter(|b| b.residual).count(), 9);
    }
}
