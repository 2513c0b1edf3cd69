//! MobileNetV2's forward pass on a GPU (any CubeCL device: WebGPU, Vulkan, Metal, CUDA), in
//! NHWC from the stem to the last layer:
//! - the 1x1 convolutions (~95 % of the multiply-adds) are one matmul each over `[N·H·W, C]`
//!   rows, which burn's matmul kernels (and its autodiff) handle well, instead of burn's direct
//!   convolution over NCHW with a layout copy on every call;
//! - BatchNorm (or a folded layer's bias), ReLU6 and the block's residual are one kernel after
//!   each matmul, and the depthwise 3x3 layers one kernel with all of them;
//! - the stem is its 27-wide patches times the `[32, 27]` weight.
//!
//! The output is returned as NCHW (a permuted view, no copy), so callers see the same shapes as
//! on the CPU.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Device, Tensor};

use super::ops::{LayerSpec, MobileNetOps};
use crate::backbone::Backbone;
use crate::blocks::{ConvBn, InvertedResidual};

/// Whether the GPU path is on (the default). Off, MobileNetV2 runs burn's generic ops on the
/// GPU as well: the baseline that benchmarks and tests compare the kernels with.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns graft's GPU path on or off for the whole process (see [`ENABLED`]).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether `x` lives on a CubeCL device (with or without autodiff) in f32 and the path is on:
/// the tensors the GPU path takes.
pub(crate) fn applies(x: &Tensor<4>) -> bool {
    let device = x.device().without_autodiff();
    enabled() && matches!(device.as_dispatch(), DispatchDevice::Cube(_)) && x.dtype() == DType::F32
}

/// The four BatchNorm vectors of `layer` on `device`, or its bias four times when the layer is
/// folded, and the kernels' spec.
fn norm(layer: &ConvBn, device: &Device, stride: usize) -> ([Tensor<1>; 4], LayerSpec) {
    // BatchNorm's epsilon (1e-5) fits an f32.
    #[allow(clippy::cast_possible_truncation)]
    let spec = |norm| LayerSpec { norm, relu6: layer.relu6, stride, eps: layer.bn.epsilon as f32 };
    if layer.folded {
        let bias = layer.conv.bias.as_ref().expect("a folded layer has a bias").val();
        ([bias.clone(), bias.clone(), bias.clone(), bias], spec(false))
    } else {
        let bn = &layer.bn;
        let tensors = [
            bn.gamma.val(),
            bn.beta.val(),
            bn.running_mean.value().to_device(device),
            bn.running_var.value().to_device(device),
        ];
        (tensors, spec(true))
    }
}

/// A 1x1 convolution and its BatchNorm/ReLU6 (and residual) over NHWC `x`.
fn pointwise(layer: &ConvBn, x: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
    let [n, h, w, c_in] = x.dims();
    let weight = layer.conv.weight.val();
    let c_out = weight.dims()[0];
    let z = dense(x.reshape([n * h * w, c_in]), weight);
    let y = affine(layer, z, residual.map(|r| r.reshape([n * h * w, c_out])));
    y.reshape([n, h, w, c_out])
}

/// Rows `[M, K]` times a `[C_out, …]` weight flattened to `[C_out, K]`, transposed.
fn dense(x: Tensor<2>, weight: Tensor<4>) -> Tensor<2> {
    Tensor::from_dispatch(Dispatch::dense(x.into_dispatch(), weight.into_dispatch()))
}

/// BatchNorm/bias, ReLU6 and an optional residual on `[M, C]` rows.
fn affine(layer: &ConvBn, z: Tensor<2>, residual: Option<Tensor<2>>) -> Tensor<2> {
    let ([gamma, beta, mean, var], spec) = norm(layer, &z.device(), 1);
    let (g, b, m, v) = (gamma.into_dispatch(), beta.into_dispatch(), mean.into_dispatch(), var.into_dispatch());
    let out = match residual {
        Some(r) => Dispatch::affine_residual(z.into_dispatch(), g, b, m, v, r.into_dispatch(), spec),
        None => Dispatch::affine(z.into_dispatch(), g, b, m, v, spec),
    };
    Tensor::from_dispatch(out)
}

fn depthwise(layer: &ConvBn, x: Tensor<4>) -> Tensor<4> {
    let ([gamma, beta, mean, var], spec) = norm(layer, &x.device(), layer.conv.stride[0]);
    let out = Dispatch::depthwise(
        x.into_dispatch(),
        layer.conv.weight.val().into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        mean.into_dispatch(),
        var.into_dispatch(),
        spec,
    );
    Tensor::from_dispatch(out)
}

/// The stem over NCHW images: `[N, 3, H, W]` → NHWC `[N, H/2, W/2, 32]`.
fn stem(layer: &ConvBn, images: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = images.dims();
    let stride = layer.conv.stride[0];
    let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    let patches: Tensor<2> = Tensor::from_dispatch(Dispatch::stem_patches(images.into_dispatch(), stride));
    let weight = layer.conv.weight.val();
    let c_out = weight.dims()[0];
    let z = dense(patches, weight);
    affine(layer, z, None).reshape([n, oh, ow, c_out])
}

fn block(block: &InvertedResidual, input: &Tensor<4>) -> Tensor<4> {
    let mut x = input.clone();
    let last = block.layers.len() - 1;
    for (i, layer) in block.layers.iter().enumerate() {
        x = if layer.conv.kernel_size == [3, 3] {
            depthwise(layer, x)
        } else {
            let residual = (i == last && block.residual).then(|| input.clone());
            pointwise(layer, x, residual)
        };
    }
    x
}

/// The last block's activations, NHWC `[N, H/32, W/32, 1280]`.
pub(crate) fn feature_map_nhwc(net: &Backbone, images: Tensor<4>) -> Tensor<4> {
    let mut x = stem(&net.stem, images);
    for b in &net.blocks {
        x = block(b, &x);
    }
    pointwise(&net.last, x, None)
}

/// Global average pool of an NHWC map: `[N, H, W, C]` → `[N, C]`, one reduction.
pub(crate) fn pool_nhwc(map: Tensor<4>) -> Tensor<2> {
    let [n, h, w, c] = map.dims();
    map.reshape([n, h * w, c]).mean_dim(1).reshape([n, c])
}
