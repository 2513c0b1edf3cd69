//! The GPU kernels against their definition: burn's own convolution, BatchNorm arithmetic and
//! clamp on flex (the CPU), forward and gradients, odd and even sizes, both strides. Natively
//! the GPU is wgpu on Vulkan (Mesa lavapipe on a GPU-less machine).

use burn::backend::Dispatch;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{LayerSpec, MobileNetOps};

const EPS: f32 = 1e-5;

fn gpu() -> Device {
    Device::wgpu(Default::default())
}

/// Deterministic values in [lo, hi).
fn values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    (0..u32::try_from(n).expect("a test tensor's length fits a u32"))
        .map(|i| {
            let v = i.wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(97_531)) >> 8;
            lo + (hi - lo) * ((v % 10_007) as f32 / 10_007.0)
        })
        .collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The largest difference relative to the reference's scale (so large sums compare fairly).
fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
    max_diff(got, want) / scale
}

/// NHWC `[n, h, w, c]` values → NCHW.
fn to_nchw(v: &[f32], [n, h, w, c]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out[((b * c + ch) * h + y) * w + x] = v[((b * h + y) * w + x) * c + ch];
                }
            }
        }
    }
    out
}

/// A layer's BatchNorm vectors (γ, β, μ, σ² > 0).
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

impl Norm {
    fn new(c: usize, seed: u32) -> Self {
        Self {
            gamma: values(c, seed, 0.5, 1.5),
            beta: values(c, seed + 1, -0.5, 1.5),
            mean: values(c, seed + 2, -0.3, 0.3),
            var: values(c, seed + 3, 0.2, 2.0),
        }
    }

    /// `y·s + b` with the reference's ops, `[C]` broadcast along `axis` of a rank-4 tensor.
    fn apply(&self, y: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, axis: usize) -> Tensor<4> {
        let c = self.gamma.len();
        let device = y.device();
        let mean = tensor(&self.mean, [c], &device);
        let var = tensor(&self.var, [c], &device);
        let scale = gamma * var.add_scalar(EPS).sqrt().recip();
        let shift = beta - mean * scale.clone();
        let mut shape = [1, 1, 1, 1];
        shape[axis] = c;
        y * scale.reshape(shape) + shift.reshape(shape)
    }
}

struct Grads {
    out: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

/// The reference depthwise layer on flex: burn's grouped conv2d, BatchNorm, clamp; NCHW.
fn depthwise_reference(
    x: &[f32],
    shape: [usize; 4],
    w: &[f32],
    norm: &Norm,
    stride: usize,
    relu6: bool,
    upstream: &[f32],
) -> Grads {
    let [n, h, wd, c] = shape;
    let device = Device::flex().autodiff();
    let xt = tensor(&to_nchw(x, shape), [n, c, h, wd], &device).require_grad();
    let wt = tensor(w, [c, 1, 3, 3], &device).require_grad();
    let gamma = tensor(&norm.gamma, [c], &device).require_grad();
    let beta = tensor(&norm.beta, [c], &device).require_grad();
    let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], c);
    let u = conv2d(xt.clone(), wt.clone(), None, options);
    let [_, _, oh, ow] = u.dims();
    let mut y = norm.apply(u, gamma.clone(), beta.clone(), 1);
    if relu6 {
        y = y.clamp(0.0, 6.0);
    }
    let up = tensor(&to_nchw(upstream, [n, oh, ow, c]), [n, c, oh, ow], &device);
    let grads = (y.clone() * up).sum().backward();
    Grads {
        out: host(y.inner()),
        dx: host(xt.grad(&grads).expect("dx")),
        dw: host(wt.grad(&grads).expect("dw")),
        dgamma: host(gamma.grad(&grads).expect("dgamma")),
        dbeta: host(beta.grad(&grads).expect("dbeta")),
    }
}

/// The same layer through graft's kernels on the GPU, NHWC; outputs converted to NCHW.
fn depthwise_kernels(
    x: &[f32],
    shape: [usize; 4],
    w: &[f32],
    norm: &Norm,
    stride: usize,
    relu6: bool,
    upstream: &[f32],
) -> Grads {
    let [n, h, wd, c] = shape;
    let device = gpu().autodiff();
    let xt = tensor(x, shape, &device).require_grad();
    let wt = tensor(w, [c, 1, 3, 3], &device).require_grad();
    let gamma = tensor(&norm.gamma, [c], &device).require_grad();
    let beta = tensor(&norm.beta, [c], &device).require_grad();
    let (mean, var) = (tensor(&norm.mean, [c], &device), tensor(&norm.var, [c], &device));
    let spec = LayerSpec { norm: true, relu6, stride, eps: EPS };
    let y: Tensor<4> = Tensor::from_dispatch(Dispatch::depthwise(
        xt.clone().into_dispatch(),
        wt.clone().into_dispatch(),
        gamma.clone().into_dispatch(),
        beta.clone().into_dispatch(),
        mean.into_dispatch(),
        var.into_dispatch(),
        spec,
    ));
    let [_, oh, ow, _] = y.dims();
    assert_eq!([oh, ow], [(h - 1) / stride + 1, (wd - 1) / stride + 1]);
    let up = tensor(upstream, [n, oh, ow, c], &device);
    let grads = (y.clone() * up).sum().backward();
    Grads {
        out: to_nchw(&host(y.inner()), [n, oh, ow, c]),
        dx: to_nchw(&host(xt.grad(&grads).expect("dx")), shape),
        dw: host(wt.grad(&grads).expect("dw")),
        dgamma: host(gamma.grad(&grads).expect("dgamma")),
        dbeta: host(beta.grad(&grads).expect("dbeta")),
    }
}

#[test]
fn depthwise_matches_burns_convolution_forward_and_gradients() {
    // Odd and even sizes, both strides, with and without ReLU6; more channels than a
    // workgroup's worth of rows per tile in the first case.
    for (shape, stride, relu6) in
        [([2, 9, 7, 5], 1, true), ([1, 8, 10, 3], 2, true), ([2, 7, 7, 4], 2, false), ([3, 12, 12, 40], 1, true)]
    {
        let [n, h, w, c] = shape;
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let x = values(n * h * w * c, 1, -2.0, 3.0);
        let weight = values(c * 9, 2, -1.0, 1.0);
        let norm = Norm::new(c, 3);
        let upstream = values(n * oh * ow * c, 4, -1.0, 1.0);
        let want = depthwise_reference(&x, shape, &weight, &norm, stride, relu6, &upstream);
        let got = depthwise_kernels(&x, shape, &weight, &norm, stride, relu6, &upstream);
        let case = format!("{shape:?} stride {stride} relu6 {relu6}");
        assert!(max_diff(&got.out, &want.out) < 1e-4, "{case}: output");
        assert!(rel_diff(&got.dx, &want.dx) < 1e-4, "{case}: dx");
        assert!(rel_diff(&got.dw, &want.dw) < 1e-4, "{case}: dw {:?} vs {:?}", &got.dw[..4], &want.dw[..4]);
        assert!(rel_diff(&got.dgamma, &want.dgamma) < 1e-4, "{case}: dgamma");
        assert!(rel_diff(&got.dbeta, &want.dbeta) < 1e-4, "{case}: dbeta");
    }
}

#[test]
fn folded_depthwise_adds_the_bias() {
    let shape = [1, 6, 5, 3];
    let [n, h, w, c] = shape;
    let x = values(n * h * w * c, 5, -2.0, 2.0);
    let weight = values(c * 9, 6, -1.0, 1.0);
    let bias = values(c, 7, -1.0, 1.0);
    let device = gpu();
    let b = || tensor(&bias, [c], &device).into_dispatch();
    let spec = LayerSpec { norm: false, relu6: true, stride: 1, eps: EPS };
    let y: Tensor<4> = Tensor::from_dispatch(Dispatch::depthwise(
        tensor(&x, shape, &device).into_dispatch(),
        tensor(&weight, [c, 1, 3, 3], &device).into_dispatch(),
        b(),
        b(),
        b(),
        b(),
        spec,
    ));
    let flex = Device::flex();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], c);
    let want = conv2d(
        tensor(&to_nchw(&x, shape), [n, c, h, w], &flex),
        tensor(&weight, [c, 1, 3, 3], &flex),
        Some(tensor(&bias, [c], &flex)),
        options,
    )
    .clamp(0.0, 6.0);
    assert!(max_diff(&to_nchw(&host(y), shape), &host(want)) < 1e-5);
}

/// `affine` (with and without the residual) against the same arithmetic in burn's ops.
#[test]
fn affine_matches_batchnorm_relu6_and_residual_forward_and_gradients() {
    for (rows, c, relu6, residual) in [(37, 5, true, false), (300, 24, false, true), (64, 3, true, true)] {
        let z = values(rows * c, 8, -3.0, 9.0);
        let r = values(rows * c, 9, -1.0, 1.0);
        let up = values(rows * c, 10, -1.0, 1.0);
        let norm = Norm::new(c, 11);
        let run = |device: Device, kernels: bool| {
            let zt = tensor(&z, [1, 1, rows, c], &device).require_grad();
            let rt = tensor(&r, [1, 1, rows, c], &device).require_grad();
            let gamma = tensor(&norm.gamma, [c], &device).require_grad();
            let beta = tensor(&norm.beta, [c], &device).require_grad();
            let y: Tensor<4> = if kernels {
                let spec = LayerSpec { norm: true, relu6, stride: 1, eps: EPS };
                let (m, v) = (tensor(&norm.mean, [c], &device), tensor(&norm.var, [c], &device));
                let z2 = zt.clone().reshape([rows, c]).into_dispatch();
                let (g, b) = (gamma.clone().into_dispatch(), beta.clone().into_dispatch());
                let out = if residual {
                    let r2 = rt.clone().reshape([rows, c]).into_dispatch();
                    Dispatch::affine_residual(z2, g, b, m.into_dispatch(), v.into_dispatch(), r2, spec)
                } else {
                    Dispatch::affine(z2, g, b, m.into_dispatch(), v.into_dispatch(), spec)
                };
                Tensor::<2>::from_dispatch(out).reshape([1, 1, rows, c])
            } else {
                let mut y = norm.apply(zt.clone(), gamma.clone(), beta.clone(), 3);
                if relu6 {
                    y = y.clamp(0.0, 6.0);
                }
                if residual {
                    y = y + rt.clone();
                }
                y
            };
            let grads = (y.clone() * tensor(&up, [1, 1, rows, c], &device)).sum().backward();
            let dr = if residual { host(rt.grad(&grads).expect("dr")) } else { Vec::new() };
            (
                host(y.inner()),
                host(zt.grad(&grads).expect("dz")),
                host(gamma.grad(&grads).expect("dgamma")),
                host(beta.grad(&grads).expect("dbeta")),
                dr,
            )
        };
        let want = run(Device::flex().autodiff(), false);
        let got = run(gpu().autodiff(), true);
        let case = format!("{rows}x{c} relu6 {relu6} residual {residual}");
        assert!(max_diff(&got.0, &want.0) < 1e-4, "{case}: output");
        assert!(rel_diff(&got.1, &want.1) < 1e-5, "{case}: dz");
        assert!(rel_diff(&got.2, &want.2) < 1e-4, "{case}: dgamma");
        assert!(rel_diff(&got.3, &want.3) < 1e-4, "{case}: dbeta");
        assert!(max_diff(&got.4, &want.4) < 1e-6, "{case}: dresidual");
    }
}

/// The stem's patches times its weight is burn's convolution, and the patches' backward
/// gives the images' gradient.
#[test]
fn stem_patches_are_the_convolution_and_differentiate() {
    for (n, h, w, stride) in [(2, 9, 8, 2), (1, 7, 7, 1)] {
        let x = values(n * 3 * h * w, 12, -2.0, 2.0);
        let weight = values(8 * 27, 13, -1.0, 1.0);
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let up = values(n * 8 * oh * ow, 14, -1.0, 1.0);
        let run = |device: Device, kernels: bool| {
            let xt = tensor(&x, [n, 3, h, w], &device).require_grad();
            let wt = tensor(&weight, [8, 3, 3, 3], &device);
            let y = if kernels {
                let patches: Tensor<2> =
                    Tensor::from_dispatch(Dispatch::stem_patches(xt.clone().into_dispatch(), stride));
                // [N·OH·OW, 8] rows → NCHW.
                patches.matmul(wt.reshape([8, 27]).transpose()).reshape([n, oh, ow, 8]).permute([0, 3, 1, 2])
            } else {
                conv2d(xt.clone(), wt, None, ConvOptions::new([stride, stride], [1, 1], [1, 1], 1))
            };
            let grads = (y.clone() * tensor(&up, [n, 8, oh, ow], &device)).sum().backward();
            (host(y.inner()), host(xt.grad(&grads).expect("dx")))
        };
        let want = run(Device::flex().autodiff(), false);
        let got = run(gpu().autodiff(), true);
        assert!(max_diff(&got.0, &want.0) < 1e-4, "stride {stride}: output");
        assert!(max_diff(&got.1, &want.1) < 1e-4, "stride {stride}: images' gradient");
    }
}

/// graft's AdamW kernel and burn's AdamW (on the CPU) take the same steps.
#[test]
fn fused_adamw_matches_burns_adamw() {
    use burn::optim::{AdamWConfig, Optimizer};

    use crate::fused_adamw::{self, AdamHyper};

    let n = 37;
    let p0 = values(n, 20, -1.0, 1.0);
    let h = AdamHyper { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay: 0.05 };
    let burn_adamw = AdamWConfig::new().with_weight_decay(h.weight_decay).build();
    let flex = Device::flex();
    let device = gpu();
    let (mut want, mut state) = (tensor(&p0, [n], &flex), None);
    let (mut got, mut moments) = (tensor(&p0, [n], &device), None);
    assert!(fused_adamw::applies(&got));
    for step in 1..=4u32 {
        let g = values(n, 30 + step, -2.0, 2.0);
        let lr = 0.01 * f64::from(step);
        (want, state) = burn_adamw.step(lr, want, tensor(&g, [n], &flex), state);
        let (p, m, v) = fused_adamw::step(got, tensor(&g, [n], &device), moments, lr, step as usize, &h);
        got = p;
        moments = Some((m, v));
        let diff = max_diff(&host(got.clone()), &host(want.clone()));
        assert!(diff < 1e-6, "step {step}: parameters differ by {diff}");
    }
}
