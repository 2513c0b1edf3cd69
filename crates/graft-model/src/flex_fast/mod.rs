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

/// The kernel's geometry when `conv` is a 3x3 depthwise convolution with padding 1 and stride
/// 1 or 2 over `x`.
fn depthwise_geometry(x: &Tensor<4>, conv: &Conv2d) -> Option<Depthwise3x3> {
    let [batch, channels, height, width] = x.dims();
    let stride = kernel_3x3_stride(conv)?;
    let depthwise = conv.groups == channels && conv.weight.dims() == [channels, 1, 3, 3];
    depthwise.then_some(Depthwise3x3 { batch, channels, height, width, stride })
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

    pub fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }
}
