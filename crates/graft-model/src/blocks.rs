//! The building blocks of MobileNetV2 and EfficientNet-Lite0: conv + BatchNorm (+ ReLU6) and
//! the inverted residual, named after the checkpoint they load from.

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
    /// How the input is padded; with [`Padding::Same`] the amounts depend on the input's size,
    /// so `conv.padding` is only the placeholder `Valid` (see [`ConvBn::sized_conv`]).
    #[module(skip)]
    pub padding: Padding,
}

/// How a convolution pads its input with zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// `(kernel − 1) / 2` on every side (PyTorch's convention).
    #[default]
    Centered,
    /// TensorFlow's SAME: the output is `⌈input / stride⌉`, and the padding that needs is split
    /// with the odd pixel after (bottom, right). A stride-2 layer on an even input pads only
    /// after: a 3×3 kernel by (0, 1), a 5×5 by (1, 2).
    Same,
}

impl Padding {
    /// `(before, after)` padding of one dimension of `size` for `kernel` and `stride`.
    pub fn pads(self, size: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self {
            Self::Centered => ((kernel - 1) / 2, (kernel - 1) / 2),
            Self::Same => {
                let out = size.div_ceil(stride);
                let total = ((out - 1) * stride + kernel).saturating_sub(size);
                (total / 2, total - total / 2)
            }
        }
    }
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
    pub padding: Padding,
    /// BatchNorm's epsilon: 1e-5 in PyTorch, 1e-3 in weights trained in TensorFlow.
    pub bn_eps: f64,
}

impl ConvSpec {
    /// The output's height (or width) for an input side of `side`: both paddings keep
    /// ⌈side / stride⌉ for odd kernels.
    pub fn output_side(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in / self.groups, self.kernel, self.kernel]
    }
}

impl ConvBn {
    fn config(spec: ConvSpec) -> Conv2dConfig {
        let padding = match spec.padding {
            Padding::Centered => {
                let pad = (spec.kernel - 1) / 2;
                PaddingConfig2d::Explicit(pad, pad, pad, pad)
            }
            Padding::Same => PaddingConfig2d::Valid,
        };
        Conv2dConfig::new([spec.c_in, spec.c_out], [spec.kernel, spec.kernel])
            .with_stride([spec.stride, spec.stride])
            .with_padding(padding)
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
        let mut bn = BatchNormConfig::new(spec.c_out).with_epsilon(spec.bn_eps).init(device);
        bn.gamma = Param::from_tensor(weights.tensor(&format!("{bn_name}.weight"), c, device)?);
        bn.beta = Param::from_tensor(weights.tensor(&format!("{bn_name}.bias"), c, device)?);
        bn.running_mean = RunningState::new(weights.tensor(&format!("{bn_name}.running_mean"), c, device)?);
        bn.running_var = RunningState::new(weights.tensor(&format!("{bn_name}.running_var"), c, device)?);
        Ok(Self { conv, bn, relu6: spec.relu6, folded: false, padding: spec.padding })
    }

    /// The convolution with its padding for an input like `x`: itself, or for SAME padding a
    /// copy (sharing its parameters) with the explicit amounts this input size needs, so that
    /// burn's convolution and the flex kernels both see them.
    fn sized_conv(&self, x: &Tensor<4>) -> std::borrow::Cow<'_, Conv2d> {
        match self.padding {
            Padding::Centered => std::borrow::Cow::Borrowed(&self.conv),
            Padding::Same => {
                let [_, _, h, w] = x.dims();
                let (k, s) = (self.conv.kernel_size[0], self.conv.stride[0]);
                let ((top, bottom), (left, right)) = (self.padding.pads(h, k, s), self.padding.pads(w, k, s));
                let mut conv = self.conv.clone();
                conv.padding = PaddingConfig2d::Explicit(top, left, bottom, right);
                std::borrow::Cow::Owned(conv)
            }
        }
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
        let conv = self.sized_conv(&x);
        // On flex, depthwise layers and the stem run hand-written kernels (src/flex_fast/); a
        // folded layer includes its bias and ReLU6.
        if self.folded {
            if let Some(y) = flex_fast::conv(&x, &conv, self.relu6) {
                return y;
            }
        }
        let fast = if self.folded {
            None
        } else {
            flex_fast::conv(&x, &conv, false).or_else(|| flex_fast::depthwise_autodiff(&x, &conv))
        };
        let x = match fast {
            Some(y) => y,
            None => conv.forward(x),
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
        Self { conv, bn: self.bn.clone(), relu6: self.relu6, folded: true, padding: self.padding }
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

/// An inverted residual (MobileNetV2's block, EfficientNet's MBConv without squeeze-excitation):
/// optional 1x1 expansion, depthwise, 1x1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub layers: Vec<ConvBn>,
    pub residual: bool,
}

impl InvertedResidual {
    /// MobileNetV2's block (PyTorch padding, BatchNorm ε 1e-5).
    pub(crate) fn specs(c_in: usize, c_out: usize, stride: usize, expand: usize) -> Vec<ConvSpec> {
        let hidden = c_in * expand;
        let conv = |c_in, c_out, kernel, stride, groups, relu6| ConvSpec {
            c_in,
            c_out,
            kernel,
            stride,
            groups,
            relu6,
            padding: Padding::Centered,
            bn_eps: 1e-5,
        };
        let mut specs = Vec::new();
        if expand != 1 {
            specs.push(conv(c_in, hidden, 1, 1, 1, true));
        }
        specs.push(conv(hidden, hidden, 3, stride, hidden, true));
        specs.push(conv(hidden, c_out, 1, 1, 1, false));
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
}
