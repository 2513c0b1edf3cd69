//! Differentiable versions for the trainable (unfolded) backbone on flex's autodiff device:
//! burn computes a grouped convolution's weight gradient with one sliced convolution per
//! channel (960 of them in MobileNetV2's last blocks), and ReLU6's backward as several
//! sequential mask passes; together they were most of a fine-tune step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::{clamp_relu6, depthwise_geometry, flex_raw, on_flex, zip_chunks, DepthwiseKernel};

/// The backward step of [`depthwise_autodiff`]: the kernel's input and weight gradients.
#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// The geometry, the layer's input and its weight.
    type State = (DepthwiseKernel, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [input_node, weight_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (g, input, weight) = ops.state;
        if let Some(node) = input_node {
            let dx = g.input_grad(grad.storage(), weight.storage());
            grads.register::<Flex>(node.id, flex_raw(dx, g.input_dims()));
        }
        if let Some(node) = weight_node {
            let dw = g.weight_grad(input.storage(), grad.storage());
            grads.register::<Flex>(node.id, flex_raw(dw, g.weight_dims()));
        }
    }
}

/// The bias-free depthwise convolution of a trainable layer on flex's autodiff device, forward
/// and backward by the depthwise kernels; `None` elsewhere.
pub(crate) fn depthwise_autodiff(x: &Tensor<4>, conv: &Conv2d) -> Option<Tensor<4>> {
    if !on_flex(x, true) || conv.bias.is_some() {
        return None;
    }
    let geometry = depthwise_geometry(x, conv)?;
    let input = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let weight = conv.weight.val().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let (oh, ow) = geometry.out_size();
    let [batch, channels, ..] = geometry.input_dims();
    let zeros = vec![0.0; channels];
    let forward = |x: &FlexTensor, w: &FlexTensor| {
        flex_raw(geometry.run(x.storage(), w.storage(), &zeros, false), [batch, channels, oh, ow])
    };
    let x_values = input.primitive().to_contiguous();
    let w_values = weight.primitive().to_contiguous();
    let output =
        match DepthwiseBackward.prepare::<NoCheckpointing>([input.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = forward(&x_values, &w_values);
                prep.finish((geometry, x_values, w_values), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x_values, &w_values)),
        };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

/// The backward step of [`relu6_autodiff`]: the gradient passes where the output is strictly
/// inside (0, 6), which is where the input was (PyTorch's hardtanh does the same).
#[derive(Debug)]
struct Relu6Backward;

impl Backward<Flex, 1> for Relu6Backward {
    /// The clamped output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let mut grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = node else { return };
        let output = ops.state;
        zip_chunks(grad.storage_mut(), output.storage(), |g, y| {
            for (g, &y) in g.iter_mut().zip(y) {
                *g = if y > 0.0 && y < 6.0 { *g } else { 0.0 };
            }
        });
        grads.register::<Flex>(node.id, grad);
    }
}

/// ReLU6 on flex's autodiff device (see [`super::relu6`]): one parallel pass forward, one
/// backward.
pub(super) fn relu6(x: FloatTensor<Autodiff<Flex>>) -> FloatTensor<Autodiff<Flex>> {
    let node = x.node();
    let mut values = x.into_primitive().to_contiguous();
    // In place when the activation is not held elsewhere (copy-on-write otherwise).
    clamp_relu6(values.storage_mut());
    match Relu6Backward.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(values.clone(), values),
        OpsKind::UnTracked(prep) => prep.finish(values),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::super::test_support::{depthwise_conv, max_diff, same_depthwise_conv};
    use super::*;
    use crate::cores::tests::serially;

    /// A non-uniform upstream gradient, so that every position matters.
    fn upstream(y: Tensor<4>) -> Tensor<1> {
        (y.clone() * y).sum()
    }

    #[test]
    fn depthwise_autodiff_matches_burns_output_and_gradients() {
        check_depthwise_autodiff();
    }

    #[test]
    fn relu6_on_autodiff_matches_burns_clamp_and_gradient() {
        check_relu6_autodiff();
    }

    /// The same checks on the one-thread branch (the page's default engine).
    #[test]
    fn the_one_thread_branch_matches_burn() {
        serially(check_depthwise_autodiff);
        serially(check_relu6_autodiff);
    }

    fn check_depthwise_autodiff() {
        let device = Device::flex().autodiff();
        // MobileNetV2's 3x3 (padding 1) and EfficientNet-Lite0's SAME-padded 3x3 and 5x5.
        let layers = [
            (1, depthwise_conv(4, 1, &device)),
            (2, depthwise_conv(4, 2, &device)),
            (2, same_depthwise_conv(4, 3, 2, 10, &device)),
            (1, same_depthwise_conv(4, 5, 1, 10, &device)),
            (2, same_depthwise_conv(4, 5, 2, 10, &device)),
        ];
        for (stride, layer) in layers {
            let conv = Conv2d { bias: None, ..layer };
            let x = Tensor::<4>::random([2, 4, 10, 10], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let want = conv.forward(x.clone());
            let want_grads = upstream(want.clone()).backward();
            let got = depthwise_autodiff(&x, &conv).expect("flex autodiff takes the kernel");
            assert!(max_diff(got.clone().inner(), want.inner()) < 1e-5);
            let got_grads = upstream(got).backward();
            let dx = |g| x.grad(g).expect("input gradient");
            let dw = |g| conv.weight.grad(g).expect("weight gradient");
            assert!(max_diff(dx(&got_grads), dx(&want_grads)) < 1e-4, "stride {stride}: input gradient");
            assert!(max_diff(dw(&got_grads), dw(&want_grads)) < 1e-3, "stride {stride}: weight gradient");
        }
    }

    fn check_relu6_autodiff() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(2.0, 5.0), &device).require_grad();
        let want = x.clone().clamp(0.0, 6.0);
        let want_grads = upstream(want.clone()).backward();
        // `x` stays alive (it is the leaf), so the forward must not clamp it in place.
        let got = super::super::relu6(x.clone());
        assert!(max_diff(got.clone().inner(), want.inner()) == 0.0);
        let got_grads = upstream(got).backward();
        let dx = |g| x.grad(g).expect("input gradient");
        assert!(max_diff(dx(&got_grads), dx(&want_grads)) == 0.0);
        assert!(x.inner().min().into_scalar::<f32>() < 0.0, "the input was clamped in place");
    }

    #[test]
    fn plain_tensors_do_not_take_the_training_kernel() {
        let device = Device::flex();
        let conv = Conv2d { bias: None, ..depthwise_conv(2, 1, &device) };
        let x = Tensor::<4>::ones([1, 2, 4, 4], &device);
        assert!(depthwise_autodiff(&x, &conv).is_none());
    }
}
