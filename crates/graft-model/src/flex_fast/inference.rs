//! The folded (frozen) forward pass on the plain flex device.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::{clamp_relu6, depthwise_geometry, flex_raw, into_contiguous, on_flex};

/// The raw values of a plain-flex tensor (contiguous), or `None` if `x` lives elsewhere.
fn flex_values<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if !on_flex(x, false) {
        return None;
    }
    x.clone().try_into_primitive::<Flex>().ok().map(|t| t.to_contiguous())
}

/// `conv` (a 3x3 depthwise convolution, padding 1, bias optional), then ReLU6 if asked, in one
/// pass over a plain-flex tensor; `None` when the layer or the tensor does not fit the kernel.
pub(crate) fn depthwise(x: &Tensor<4>, conv: &Conv2d, relu6: bool) -> Option<Tensor<4>> {
    let geometry = depthwise_geometry(x, conv)?;
    let input = flex_values(x)?;
    let weight = flex_values(&conv.weight.val())?;
    let bias = match &conv.bias {
        Some(bias) => flex_values(&bias.val())?.storage::<f32>().to_vec(),
        None => vec![0.0; geometry.channels],
    };
    let out = geometry.run(input.storage(), weight.storage(), &bias, relu6);
    let (oh, ow) = geometry.out_size();
    Some(Tensor::from_primitive::<Flex>(flex_raw(out, [geometry.batch, geometry.channels, oh, ow])))
}

/// ReLU6 of a plain-flex tensor (see [`super::relu6`]).
pub(super) fn relu6(t: FlexTensor) -> FlexTensor {
    // A freshly computed activation is its buffer's only owner (so it is clamped in place); a
    // shared one is copied first.
    let mut t = into_contiguous(t);
    clamp_relu6(t.storage_mut());
    t
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::super::test_support::{depthwise_conv, max_diff};
    use super::*;

    #[test]
    fn depthwise_matches_burn_conv_and_clamp_on_flex() {
        let device = Device::flex();
        for stride in [1, 2] {
            let conv = depthwise_conv(5, stride, &device);
            let x = Tensor::<4>::random([2, 5, 9, 12], Distribution::Normal(0.0, 4.0), &device);
            let want = conv.forward(x.clone()).clamp(0.0, 6.0);
            let got = depthwise(&x, &conv, true).expect("flex takes the fast path");
            assert_eq!(got.dims(), want.dims());
            assert!(max_diff(got, want) < 1e-5);
        }
    }

    #[test]
    fn relu6_matches_burn_clamp_and_leaves_a_shared_input_alone() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 5.0), &device);
        let want = x.clone().clamp(0.0, 6.0);
        // `x` is still held here, so the kernel must copy instead of writing into it.
        let got = super::super::relu6(x.clone());
        assert!(max_diff(got, want) == 0.0);
        assert!(x.min().into_scalar::<f32>() < 0.0, "the shared input was clamped in place");
    }

    #[test]
    fn autodiff_tensors_do_not_take_the_inference_kernel() {
        let device = Device::flex().autodiff();
        let conv = depthwise_conv(2, 1, &device);
        let x = Tensor::<4>::ones([1, 2, 4, 4], &device);
        assert!(depthwise(&x, &conv, true).is_none());
    }
}
