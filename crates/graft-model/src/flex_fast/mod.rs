//! Hand-written CPU paths for MobileNetV2's hot layers when their tensors live on burn's flex
//! device: the depthwise kernel of [`crate::depthwise`], the stem's [`crate::small_conv`] and
//! ReLU6, for inference on the plain device ([`inference`]) and (depthwise, ReLU6) as
//! differentiable operations on flex's autodiff device ([`training`]). Anything else (WebGPU, other dtypes or shapes) keeps burn's own ops, and each
//! function says so by giving its input back or returning `None`.

mod inference;
mod training;

pub(crate) use inference::conv;
pub(crate) use training::depthwise_autodiff;

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::depthwise::Depthwise3x3;
use crate::depthwise_general::DepthwiseGeneral;
use crate::small_conv::{SmallConv3x3, MAX_SMALL_CONV_CHANNELS};

/// Whether `x` is an f32 tensor on flex, with (`autodiff`) or without autodiff. (Device
/// equality alone ignores autodiff.)
fn on_flex<const D: usize>(x: &Tensor<D>, autodiff: bool) -> bool {
    let device = x.device();
    device == Device::flex() && device.is_autodiff() == autodiff && x.dtype() == DType::F32
}

/// `t` with a contiguous layout, the original handle dropped: a contiguous tensor keeps its
/// buffer, still uniquely owned if it was (so that it can be written in place).
fn into_contiguous(t: FlexTensor) -> FlexTensor {
    let contiguous = t.to_contiguous();
    drop(t);
    contiguous
}

fn flex_raw<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The stride of `conv` if it is a 3x3 convolution with padding 1, no dilation and stride 1 or
/// 2 (the shapes the kernels handle).
fn kernel_3x3_stride(conv: &Conv2d) -> Option<usize> {
    let square_stride = conv.stride[0] == conv.stride[1] && matches!(conv.stride[0], 1 | 2);
    let padding_one = matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1));
    let fits = conv.kernel_size == [3, 3] && conv.dilation == [1, 1] && square_stride && padding_one;
    fits.then_some(conv.stride[0])
}

/// A depthwise layer's kernel: the tuned 3x3 one for PyTorch's padding 1, the general one for
/// other kernels and paddings (EfficientNet-Lite0's 5x5 and SAME padding).
#[derive(Debug, Clone, Copy)]
enum DepthwiseKernel {
    Tuned(Depthwise3x3),
    General(DepthwiseGeneral),
}

impl DepthwiseKernel {
    fn out_size(&self) -> (usize, usize) {
        match self {
            Self::Tuned(g) => g.out_size(),
            Self::General(g) => g.out_size(),
        }
    }

    /// `[batch, channels, height, width]` of the input.
    fn input_dims(&self) -> [usize; 4] {
        match *self {
            Self::Tuned(g) => [g.batch, g.channels, g.height, g.width],
            Self::General(g) => [g.batch, g.channels, g.height, g.width],
        }
    }

    fn weight_dims(&self) -> [usize; 4] {
        match *self {
            Self::Tuned(g) => [g.channels, 1, 3, 3],
            Self::General(g) => [g.channels, 1, g.kernel, g.kernel],
        }
    }

    fn run(&self, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        match self {
            Self::Tuned(g) => g.run(input, weight, bias, relu6),
            Self::General(g) => g.run(input, weight, bias, relu6),
        }
    }

    fn input_grad(&self, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        match self {
            Self::Tuned(g) => g.input_grad(grad, weight),
            Self::General(g) => g.input_grad(grad, weight),
        }
    }

    fn weight_grad(&self, input: &[f32], grad: &[f32]) -> Vec<f32> {
        match self {
            Self::Tuned(g) => g.weight_grad(input, grad),
            Self::General(g) => g.weight_grad(input, grad),
        }
    }
}

/// The kernel for `conv` over `x` when it is a depthwise convolution one of them computes:
/// 3x3 with padding 1 (tuned), or any odd square kernel with explicit padding, stride 1 or 2.
fn depthwise_geometry(x: &Tensor<4>, conv: &Conv2d) -> Option<DepthwiseKernel> {
    let [batch, channels, height, width] = x.dims();
    let [k, k_cols] = conv.kernel_size;
    let depthwise = conv.groups == channels && conv.weight.dims() == [channels, 1, k, k_cols];
    if !depthwise || k != k_cols || conv.dilation != [1, 1] || conv.stride[0] != conv.stride[1] {
        return None;
    }
    if let Some(stride) = kernel_3x3_stride(conv) {
        return Some(DepthwiseKernel::Tuned(Depthwise3x3 { batch, channels, height, width, stride }));
    }
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else { return None };
    let stride = conv.stride[0];
    let g = DepthwiseGeneral {
        batch,
        channels,
        height,
        width,
        kernel: k,
        stride,
        pad_rows: (top, bottom),
        pad_cols: (left, right),
    };
    g.fits().then_some(DepthwiseKernel::General(g))
}

/// The kernel's geometry when `conv` is a dense 3x3 convolution over a few input channels.
fn small_conv_geometry(x: &Tensor<4>, conv: &Conv2d) -> Option<SmallConv3x3> {
    let [batch, c_in, height, width] = x.dims();
    let stride = kernel_3x3_stride(conv)?;
    let [c_out, weight_in, ..] = conv.weight.dims();
    let small = conv.groups == 1 && weight_in == c_in && c_in <= MAX_SMALL_CONV_CHANNELS;
    small.then_some(SmallConv3x3 { batch, c_in, c_out, height, width, stride })
}

/// ReLU6, `x.clamp(0, 6)`: on flex in one parallel pass, in place when `x` is its buffer's only
/// owner, and differentiable on the autodiff device (burn's clamp is a sequential loop, and
/// its backward several sequential mask passes); burn's clamp elsewhere.
pub(crate) fn relu6(x: Tensor<4>) -> Tensor<4> {
    if on_flex(&x, false) {
        let t = x.try_into_primitive::<Flex>().expect("a plain flex tensor");
        Tensor::from_primitive::<Flex>(inference::relu6(t))
    } else if on_flex(&x, true) {
        let t = x.try_into_primitive::<Autodiff<Flex>>().expect("a flex autodiff tensor");
        Tensor::from_primitive::<Autodiff<Flex>>(training::relu6(t))
    } else {
        x.clamp(0.0, 6.0)
    }
}

/// ReLU6 in place. Always stores (a select, not a branch: ReLU inputs are half negative, so a
/// conditional store mispredicts); `f32::clamp` keeps NaN, as PyTorch does.
fn clamp_relu6(values: &mut [f32]) {
    for_each_chunk(values, |chunk| chunk.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)));
}

/// Elements per parallel work item of the element-wise passes.
const CHUNK: usize = 1 << 14;

/// Runs `f` over `values` in chunks, on every core with the `parallel` feature.
fn for_each_chunk(values: &mut [f32], f: impl Fn(&mut [f32]) + Sync + Send) {
    crate::cores::for_each_chunk_mut(values, CHUNK, |_, chunk, _| f(chunk));
}

/// Runs `f` over matching chunks of `values` and `other`, on every core with `parallel`.
fn zip_chunks(values: &mut [f32], other: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync + Send) {
    crate::cores::zip_chunks_mut(values, other, CHUNK, f);
}

#[cfg(test)]
mod test_support {
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::PaddingConfig2d;
    use burn::tensor::{Device, Tensor};

    pub fn depthwise_conv(channels: usize, stride: usize, device: &Device) -> Conv2d {
        Conv2dConfig::new([channels, channels], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_groups(channels)
            .init(device)
    }

    /// EfficientNet-Lite0's depthwise layers: `kernel`×`kernel` with TensorFlow's SAME padding
    /// for a `size`×`size` input (asymmetric at stride 2 on even sizes).
    pub fn same_depthwise_conv(channels: usize, kernel: usize, stride: usize, size: usize, device: &Device) -> Conv2d {
        let (before, after) = crate::blocks::Padding::Same.pads(size, kernel, stride);
        Conv2dConfig::new([channels, channels], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(before, before, after, after))
            .with_groups(channels)
            .init(device)
    }

    pub fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }
}
