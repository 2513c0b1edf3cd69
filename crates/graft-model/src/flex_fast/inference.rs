//! The folded (frozen) forward pass on the plain flex device.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::{clamp_relu6, depthwise_geometry, flex_raw, into_contiguous, on_flex, small_conv_geometry};

/// The raw values of a plain-flex tensor (contiguous), or `None` if `x` lives elsewhere.
fn flex_values<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if !on_flex(x, false) {
        return None;
    }
    x.clone().try_into_primitive::<Flex>().ok().map(|t| t.to_contiguous())
}

/// `conv` (bias optional), then ReLU6 if asked, in one pass over a plain-flex tensor when it is
/// a depthwise convolution (3x3 or 5x5, any explicit padding, stride 1 or 2) or a dense 3x3 one
/// over a few channels (padding 1); `None` for any other layer or tensor.
pub(crate) fn conv(x: &Tensor<4>, conv: &Conv2d, relu6: bool) -> Option<Tensor<4>> {
    // Depthwise wins where both fit (one channel, one group): the two compute the same thing.
    let depthwise = depthwise_geometry(x, conv);
    let small = small_conv_geometry(x, conv);
    let (oh, ow) = depthwise.map(|g| g.out_size()).or(small.map(|g| g.out_size()))?;
    let input = flex_values(x)?;
    let weight = flex_values(&conv.weight.val())?;
    let c_out = conv.weight.dims()[0];
    let bias = match &conv.bias {
        Some(bias) => flex_values(&bias.val())?.storage::<f32>().to_vec(),
        None => vec![0.0; c_out],
    };
    let (input, weight) = (input.storage(), weight.storage());
    let out = match (depthwise, small) {
        (Some(g), _) => g.run(input, weight, &bias, relu6),
        (None, g) => g?.run(input, weight, &bias, relu6),
    };
    let [batch, ..] = x.dims();
    Some(Tensor::from_primitive::<Flex>(flex_raw(out, [batch, c_out, oh, ow])))
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
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::{Device, Distribution};

    use super::super::test_support::{depthwise_conv, max_diff, same_depthwise_conv};
    use super::*;

    fn assert_matches_burn(layer: &Conv2d, x: &Tensor<4>) {
        for relu6 in [false, true] {
            let want = layer.forward(x.clone());
            let want = if relu6 { want.clamp(0.0, 6.0) } else { want };
            let got = conv(x, layer, relu6).expect("flex takes the fast path");
            assert_eq!(got.dims(), want.dims());
            assert!(max_diff(got, want) < 1e-5);
        }
    }

    #[test]
    fn depthwise_matches_burn_conv_and_clamp_on_flex() {
        let device = Device::flex();
        for stride in [1, 2] {
            let x = Tensor::<4>::random([2, 5, 9, 12], Distribution::Normal(0.0, 4.0), &device);
            assert_matches_burn(&depthwise_conv(5, stride, &device), &x);
        }
    }

    #[test]
    fn same_padded_3x3_and_5x5_depthwise_match_burn_conv_on_flex() {
        let device = Device::flex();
        for (kernel, stride, size) in [(3, 2, 12), (5, 2, 12), (5, 1, 9), (5, 2, 7), (3, 1, 8)] {
            let x = Tensor::<4>::random([2, 5, size, size], Distribution::Normal(0.0, 4.0), &device);
            assert_matches_burn(&same_depthwise_conv(5, kernel, stride, size, &device), &x);
        }
    }

    #[test]
    fn stem_matches_burn_conv_and_clamp_on_flex() {
        let device = Device::flex();
        for stride in [1, 2] {
            let stem = Conv2dConfig::new([3, 8], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let x = Tensor::<4>::random([2, 3, 11, 10], Distribution::Normal(0.0, 2.0), &device);
            assert_matches_burn(&stem, &x);
        }
    }

    #[test]
    fn wide_dense_convolutions_keep_burns_path() {
        let device = Device::flex();
        let layer =
            Conv2dConfig::new([16, 8], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
        let x = Tensor::<4>::ones([1, 16, 5, 5], &device);
        assert!(conv(&x, &layer, false).is_none());
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
        let layer = depthwise_conv(2, 1, &device);
        let x = Tensor::<4>::ones([1, 2, 4, 4], &device);
        assert!(conv(&x, &layer, true).is_none());
    }
}
