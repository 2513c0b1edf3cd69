//! MobileNetV2 building blocks with torchvision parameter names.

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::flex_fast;
use crate::source::WeightSource;
use crate::weights::{NamedTensor, WeightError};

/// Conv2d (no bias) + BatchNorm, optionally followed by ReLU6.
///
/// BatchNorm always normalises with its running (ImageNet) statistics, in every training mode:
/// with the small batches of a browser fine-tune, batch statistics are noisy and would drift the
/// pretrained features; its affine γ/β still learn when the backbone is trainable.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub relu6: bool,
    /// The BatchNorm is folded into the convolution's weights and bias (an inference-only copy,
    /// see [`ConvBn::folded`]); `bn` then only keeps the names and statistics for export.
    #[module(skip)]
    pub folded: bool,
}

/// Shape of one convolution: channels in/out, kernel, stride, groups.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub relu6: bool,
}

impl ConvSpec {
    fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in / self.groups, self.kernel, self.kernel]
    }
}

impl ConvBn {
    fn config(spec: ConvSpec) -> Conv2dConfig {
        let pad = (spec.kernel - 1) / 2;
        Conv2dConfig::new([spec.c_in, spec.c_out], [spec.kernel, spec.kernel])
            .with_stride([spec.stride, spec.stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_groups(spec.groups)
            .with_bias(false)
    }

    /// Builds the layer from `{conv_name}.weight` and `{bn_name}.{weight,bias,running_*}`.
    pub fn load(
        spec: ConvSpec,
        conv_name: &str,
        bn_name: &str,
        weights: &impl WeightSource,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let mut conv = Self::config(spec).init(device);
        conv.weight =
            Param::from_tensor(weights.tensor(&format!("{conv_name}.weight"), spec.weight_shape(), device)?);
        let c = [spec.c_out];
        let mut bn = BatchNormConfig::new(spec.c_out).with_epsilon(1e-5).init(device);
        bn.gamma = Param::from_tensor(weights.tensor(&format!("{bn_name}.weight"), c, device)?);
        bn.beta = Param::from_tensor(weights.tensor(&format!("{bn_name}.bias"), c, device)?);
        bn.running_mean = RunningState::new(weights.tensor(&format!("{bn_name}.running_mean"), c, device)?);
        bn.running_var = RunningState::new(weights.tensor(&format!("{bn_name}.running_var"), c, device)?);
        Ok(Self { conv, bn, relu6: spec.relu6, folded: false })
    }

    /// BatchNorm with running statistics as one per-channel affine map `x·scale + shift`,
    /// computed on `[C]` vectors: two passes over the activations instead of four, and γ/β
    /// still receive their gradients through `scale` and `shift`.
    fn scale_shift(&self, device: &Device) -> (Tensor<1>, Tensor<1>) {
        let inv_std = self.bn.running_var.value().to_device(device).add_scalar(self.bn.epsilon).sqrt().recip();
        let scale = self.bn.gamma.val() * inv_std;
        let shift = self.bn.beta.val() - self.bn.running_mean.value().to_device(device) * scale.clone();
        (scale, shift)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // On flex, depthwise layers and the stem run hand-written kernels (src/flex_fast/); a
        // folded layer includes its bias and ReLU6.
        if self.folded {
            if let Some(y) = flex_fast::conv(&x, &self.conv, self.relu6) {
                return y;
            }
        }
        let fast = if self.folded {
            None
        } else {
            flex_fast::conv(&x, &self.conv, false).or_else(|| flex_fast::depthwise_autodiff(&x, &self.conv))
        };
        let x = match fast {
            Some(y) => y,
            None => self.conv.forward(x),
        };
        let x = if self.folded {
            x
        } else {
            let channels = x.dims()[1];
            let (scale, shift) = self.scale_shift(&x.device());
            x * scale.reshape([1, channels, 1, 1]) + shift.reshape([1, channels, 1, 1])
        };
        if self.relu6 {
            flex_fast::relu6(x)
        } else {
            x
        }
    }

    /// An inference copy with the BatchNorm folded into the convolution: `w·scale` and bias
    /// `shift`, so a frozen backbone's forward is one convolution (with bias) per layer.
    pub fn folded(&self) -> Self {
        if self.folded {
            return self.clone();
        }
        let weight = self.conv.weight.val();
        let [c_out, ..] = weight.dims();
        let (scale, shift) = self.scale_shift(&weight.device());
        let mut conv = self.conv.clone();
        conv.weight = Param::from_tensor(weight * scale.reshape([c_out, 1, 1, 1]));
        conv.bias = Some(Param::from_tensor(shift));
        Self { conv, bn: self.bn.clone(), relu6: self.relu6, folded: true }
    }

    /// Exports torchvision's tensors; a folded copy has no torchvision form.
    pub fn export(&self, conv_name: &str, bn_name: &str, out: &mut Vec<NamedTensor>) {
        debug_assert!(!self.folded, "export the original model, not its folded inference copy");
        out.push(NamedTensor::new(format!("{conv_name}.weight"), self.conv.weight.val()));
        out.push(NamedTensor::new(format!("{bn_name}.weight"), self.bn.gamma.val()));
        out.push(NamedTensor::new(format!("{bn_name}.bias"), self.bn.beta.val()));
        out.push(NamedTensor::new(format!("{bn_name}.running_mean"), self.bn.running_mean.value()));
        out.push(NamedTensor::new(format!("{bn_name}.running_var"), self.bn.running_var.value()));
    }
}

/// A conv+BN pair named the torchvision way: a `Conv2dNormActivation` is `{p}.0` / `{p}.1`;
/// the final linear projection of a block is `{p}.conv.K` / `{p}.conv.K+1`.
#[derive(Debug, Clone)]
pub struct LayerNames {
    pub conv: String,
    pub bn: String,
}

impl LayerNames {
    pub fn norm_activation(prefix: &str) -> Self {
        Self { conv: format!("{prefix}.0"), bn: format!("{prefix}.1") }
    }

    pub fn split(prefix: &str, conv_index: usize) -> Self {
        Self { conv: format!("{prefix}.{conv_index}"), bn: format!("{prefix}.{}", conv_index + 1) }
    }
}

/// MobileNetV2 inverted residual: optional 1x1 expansion, 3x3 depthwise, 1x1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub layers: Vec<ConvBn>,
    pub residual: bool,
}

impl InvertedResidual {
    pub(crate) fn specs(c_in: usize, c_out: usize, stride: usize, expand: usize) -> Vec<ConvSpec> {
        let hidden = c_in * expand;
        let mut specs = Vec::new();
        if expand != 1 {
            specs.push(ConvSpec { c_in, c_out: hidden, kernel: 1, stride: 1, groups: 1, relu6: true });
        }
        specs.push(ConvSpec { c_in: hidden, c_out: hidden, kernel: 3, stride, groups: hidden, relu6: true });
        specs.push(ConvSpec { c_in: hidden, c_out, kernel: 1, stride: 1, groups: 1, relu6: false });
        specs
    }

    /// torchvision names: each activated conv is `{p}.conv.i.{0,1}`; the projection is
    /// `{p}.conv.k` with its BatchNorm at `{p}.conv.k+1`.
    pub(crate) fn names(prefix: &str, count: usize) -> Vec<LayerNames> {
        let conv = format!("{prefix}.conv");
        (0..count)
            .map(|i| {
                if i + 1 < count {
                    LayerNames::norm_activation(&format!("{conv}.{i}"))
                } else {
                    LayerNames::split(&conv, i)
                }
            })
            .collect()
    }

    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        for layer in &self.layers {
            x = layer.forward(x);
        }
        if self.residual {
            x + input
        } else {
            x
        }
    }

    /// The inference copy with every BatchNorm folded (see [`ConvBn::folded`]).
    pub fn folded(&self) -> Self {
        Self { layers: self.layers.iter().map(ConvBn::folded).collect(), residual: self.residual }
    }

    pub fn export(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let names = Self::names(prefix, self.layers.len());
        for (layer, n) in self.layers.iter().zip(&names) {
            layer.export(&n.conv, &n.bn, out);
        }
    }
}
