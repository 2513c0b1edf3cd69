//! graft's GPU kernels against their definition: burn's own convolution, matmul, BatchNorm
//! arithmetic, clamp and AdamW on flex (the CPU), forward and gradients, odd and even sizes, both
//! strides, and the sizes the start-up check's step uses. Asynchronous (every readback awaits),
//! so the same checks run natively (tests: wgpu on Vulkan, Mesa lavapipe without a GPU) and in
//! the page on WebGPU (the bench page's "check kernels", and after a failed start-up check, to
//! name the kernel that answered wrong).

use burn::backend::Dispatch;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::ops::{LayerSpec, MobileNetOps};
use crate::kernel_check::{compare, KernelCheck};

const EPS: f32 = 1e-5;

/// Every kernel check on `gpu` (a CubeCL device) against flex; `Err` when a readback failed.
pub async fn check_kernels(gpu: &Device) -> Result<Vec<KernelCheck>, String> {
    let mut out = Vec::new();
    // Odd and even sizes, both strides, with and without ReLU6; more channels than one vector
    // per thread; then the layers of the start-up check's step (batch 2, 64×64 input).
    for (shape, stride, relu6) in [
        ([2, 9, 7, 5], 1, true),
        ([1, 8, 10, 3], 2, true),
        ([2, 7, 7, 4], 2, false),
        ([3, 12, 12, 40], 1, true),
        ([2, 32, 32, 32], 1, true),
        ([2, 32, 32, 96], 2, true),
        ([2, 16, 16, 144], 1, true),
        ([2, 16, 16, 144], 2, true),
        ([2, 8, 8, 192], 2, true),
        ([2, 4, 4, 384], 1, true),
        ([2, 4, 4, 576], 2, true),
        ([2, 2, 2, 960], 1, true),
    ] {
        out.extend(depthwise_case(gpu, shape, stride, relu6).await?);
    }
    out.extend(folded_depthwise_case(gpu).await?);
    for (rows, c, relu6, residual) in [
        (37, 5, true, false),
        (300, 24, false, true),
        (64, 3, true, true),
        (2048, 32, true, false),
        (8, 1280, true, false),
        (8, 320, false, true),
        (32, 384, true, false),
    ] {
        out.extend(affine_case(gpu, rows, c, relu6, residual).await?);
    }
    for (n, h, w, stride, c_out) in [(2, 9, 8, 2, 8), (1, 7, 7, 1, 8), (2, 64, 64, 2, 32)] {
        out.extend(stem_case(gpu, [n, 3, h, w], stride, c_out).await?);
    }
    for (rows, k, c_out) in [
        (37, 5, 7),
        (2048, 32, 16),
        (512, 16, 96),
        (8, 320, 1280),
        (8, 960, 320),
        (32, 64, 384),
        (128, 32, 192),
        // Long enough for the weight gradient's own kernel: odd pixel counts, an odd number of
        // channel vectors, and the stem's 27 patch values (one lane).
        (1030, 24, 144),
        (1100, 96, 24),
        (1037, 27, 32),
    ] {
        out.extend(dense_case(gpu, rows, k, c_out).await?);
    }
    out.extend(adamw_case(gpu).await?);
    out.extend(adamw_pair_case(gpu).await?);
    Ok(out)
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

async fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = t.into_data_async().await.map_err(|e| format!("readback failed: {e}"))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| format!("readback failed: {e:?}"))
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

    /// The four vectors on `device`, γ and β tracked for gradients.
    fn tensors(&self, device: &Device) -> [Tensor<1>; 4] {
        let c = self.gamma.len();
        [
            tensor(&self.gamma, [c], device).require_grad(),
            tensor(&self.beta, [c], device).require_grad(),
            tensor(&self.mean, [c], device),
            tensor(&self.var, [c], device),
        ]
    }
}

/// A layer's output and gradients, in the order of [`QUANTITIES`].
type Readings = [Vec<f32>; 5];
const QUANTITIES: [&str; 5] = ["output", "dx", "dw", "dgamma", "dbeta"];

/// The depthwise layer (3×3 conv, BatchNorm, optional ReLU6) and its gradients under an
/// upstream gradient: burn's grouped conv2d on flex (NCHW) against graft's kernel (NHWC).
async fn depthwise_case(
    gpu: &Device,
    shape: [usize; 4],
    stride: usize,
    relu6: bool,
) -> Result<Vec<KernelCheck>, String> {
    let [n, h, wd, c] = shape;
    let (oh, ow) = ((h - 1) / stride + 1, (wd - 1) / stride + 1);
    // The wide layers see what a network feeds them: ReLU6 outputs, many exactly 0 or 6.
    let x: Vec<f32> = if c >= 96 {
        values(n * h * wd * c, 1, -2.0, 8.0).into_iter().map(|v| v.clamp(0.0, 6.0)).collect()
    } else {
        values(n * h * wd * c, 1, -2.0, 3.0)
    };
    let w = values(c * 9, 2, -1.0, 1.0);
    let norm = Norm::new(c, 3);
    let upstream = values(n * oh * ow * c, 4, -1.0, 1.0);

    let want: Readings = {
        let device = Device::flex().autodiff();
        let xt = tensor(&to_nchw(&x, shape), [n, c, h, wd], &device).require_grad();
        let wt = tensor(&w, [c, 1, 3, 3], &device).require_grad();
        let [gamma, beta, _, _] = norm.tensors(&device);
        let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], c);
        let mut y = norm.apply(conv2d(xt.clone(), wt.clone(), None, options), gamma.clone(), beta.clone(), 1);
        if relu6 {
            y = y.clamp(0.0, 6.0);
        }
        let up = tensor(&to_nchw(&upstream, [n, oh, ow, c]), [n, c, oh, ow], &device);
        let grads = (y.clone() * up).sum().backward();
        [
            host(y.inner()).await?,
            host(xt.grad(&grads).expect("dx")).await?,
            host(wt.grad(&grads).expect("dw")).await?,
            host(gamma.grad(&grads).expect("dgamma")).await?,
            host(beta.grad(&grads).expect("dbeta")).await?,
        ]
    };
    let got: Readings = {
        let device = gpu.clone().autodiff();
        let xt = tensor(&x, shape, &device).require_grad();
        let wt = tensor(&w, [c, 1, 3, 3], &device).require_grad();
        let [gamma, beta, mean, var] = norm.tensors(&device);
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
        if y.dims() != [n, oh, ow, c] {
            return Err(format!("depthwise output {:?}, expected {:?}", y.dims(), [n, oh, ow, c]));
        }
        let grads = (y.clone() * tensor(&upstream, [n, oh, ow, c], &device)).sum().backward();
        [
            to_nchw(&host(y.inner()).await?, [n, oh, ow, c]),
            to_nchw(&host(xt.grad(&grads).expect("dx")).await?, shape),
            host(wt.grad(&grads).expect("dw")).await?,
            host(gamma.grad(&grads).expect("dgamma")).await?,
            host(beta.grad(&grads).expect("dbeta")).await?,
        ]
    };
    let case = format!("NHWC {shape:?} stride {stride}{}", if relu6 { " ReLU6" } else { "" });
    Ok(QUANTITIES
        .iter()
        .zip(got.iter().zip(&want))
        .map(|(q, (g, w))| compare("depthwise 3×3 + BatchNorm", &case, q, g, w, 1e-4))
        .collect())
}

/// A folded (inference) depthwise layer: convolution plus bias, then ReLU6.
async fn folded_depthwise_case(gpu: &Device) -> Result<Vec<KernelCheck>, String> {
    let shape = [1, 6, 5, 3];
    let [n, h, w, c] = shape;
    let x = values(n * h * w * c, 5, -2.0, 2.0);
    let weight = values(c * 9, 6, -1.0, 1.0);
    let bias = values(c, 7, -1.0, 1.0);
    let b = || tensor(&bias, [c], gpu).into_dispatch();
    let spec = LayerSpec { norm: false, relu6: true, stride: 1, eps: EPS };
    let y: Tensor<4> = Tensor::from_dispatch(Dispatch::depthwise(
        tensor(&x, shape, gpu).into_dispatch(),
        tensor(&weight, [c, 1, 3, 3], gpu).into_dispatch(),
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
    let got = to_nchw(&host(y).await?, shape);
    Ok(vec![compare(
        "depthwise 3×3 folded",
        &format!("NHWC {shape:?} with bias"),
        "output",
        &got,
        &host(want).await?,
        1e-5,
    )])
}

/// BatchNorm, optional ReLU6 and optional residual over `[rows, c]`: burn's ops against
/// graft's affine kernels.
async fn affine_case(
    gpu: &Device,
    rows: usize,
    c: usize,
    relu6: bool,
    residual: bool,
) -> Result<Vec<KernelCheck>, String> {
    let z = values(rows * c, 8, -3.0, 9.0);
    let r = values(rows * c, 9, -1.0, 1.0);
    let up = values(rows * c, 10, -1.0, 1.0);
    let norm = Norm::new(c, 11);
    let mut readings = Vec::new();
    for (device, kernels) in [(Device::flex().autodiff(), false), (gpu.clone().autodiff(), true)] {
        let zt = tensor(&z, [1, 1, rows, c], &device).require_grad();
        let rt = tensor(&r, [1, 1, rows, c], &device).require_grad();
        let [gamma, beta, mean, var] = norm.tensors(&device);
        let y: Tensor<4> = if kernels {
            let spec = LayerSpec { norm: true, relu6, stride: 1, eps: EPS };
            let z2 = zt.clone().reshape([rows, c]).into_dispatch();
            let (g, b) = (gamma.clone().into_dispatch(), beta.clone().into_dispatch());
            let (m, v) = (mean.into_dispatch(), var.into_dispatch());
            let out = if residual {
                Dispatch::affine_residual(z2, g, b, m, v, rt.clone().reshape([rows, c]).into_dispatch(), spec)
            } else {
                Dispatch::affine(z2, g, b, m, v, spec)
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
        let dr = if residual { host(rt.grad(&grads).expect("dr")).await? } else { Vec::new() };
        readings.push([
            host(y.inner()).await?,
            host(zt.grad(&grads).expect("dz")).await?,
            host(gamma.grad(&grads).expect("dgamma")).await?,
            host(beta.grad(&grads).expect("dbeta")).await?,
            dr,
        ]);
    }
    let case = format!("{rows}×{c}{}{}", if relu6 { " ReLU6" } else { "" }, if residual { " + residual" } else { "" });
    let (want, got) = (&readings[0], &readings[1]);
    let kernel = "BatchNorm/ReLU6/residual (affine)";
    let mut out: Vec<KernelCheck> = [("output", 1e-4), ("dz", 1e-5), ("dgamma", 1e-4), ("dbeta", 1e-4)]
        .iter()
        .enumerate()
        .map(|(i, (q, allowed))| compare(kernel, &case, q, &got[i], &want[i], *allowed))
        .collect();
    if residual {
        out.push(compare(kernel, &case, "dresidual", &got[4], &want[4], 1e-6));
    }
    Ok(out)
}

/// The stem as the GPU path runs it — patches times the weight, then BatchNorm and ReLU6 —
/// against burn's conv2d: output, and gradients of the weight, γ, β and the images.
async fn stem_case(gpu: &Device, shape: [usize; 4], stride: usize, c_out: usize) -> Result<Vec<KernelCheck>, String> {
    let [n, _, h, w] = shape;
    let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    let x = values(n * 3 * h * w, 12, -2.0, 2.0);
    let weight = values(c_out * 27, 13, -1.0, 1.0);
    let up = values(n * c_out * oh * ow, 14, -1.0, 1.0);
    let norm = Norm::new(c_out, 15);
    let mut readings = Vec::new();
    for (device, kernels) in [(Device::flex().autodiff(), false), (gpu.clone().autodiff(), true)] {
        let xt = tensor(&x, shape, &device).require_grad();
        let wt = tensor(&weight, [c_out, 3, 3, 3], &device).require_grad();
        let [gamma, beta, mean, var] = norm.tensors(&device);
        let y = if kernels {
            let patches: Tensor<2> = Tensor::from_dispatch(Dispatch::stem_patches(xt.clone().into_dispatch(), stride));
            let z: Tensor<2> =
                Tensor::from_dispatch(Dispatch::dense(patches.into_dispatch(), wt.clone().into_dispatch()));
            let spec = LayerSpec { norm: true, relu6: true, stride: 1, eps: EPS };
            let (g, b) = (gamma.clone().into_dispatch(), beta.clone().into_dispatch());
            let y: Tensor<2> = Tensor::from_dispatch(Dispatch::affine(
                z.into_dispatch(),
                g,
                b,
                mean.into_dispatch(),
                var.into_dispatch(),
                spec,
            ));
            // [N·OH·OW, C] rows → NCHW.
            y.reshape([n, oh, ow, c_out]).permute([0, 3, 1, 2])
        } else {
            let u = conv2d(xt.clone(), wt.clone(), None, ConvOptions::new([stride, stride], [1, 1], [1, 1], 1));
            norm.apply(u, gamma.clone(), beta.clone(), 1).clamp(0.0, 6.0)
        };
        let grads = (y.clone() * tensor(&up, [n, c_out, oh, ow], &device)).sum().backward();
        readings.push([
            host(y.inner()).await?,
            host(xt.grad(&grads).expect("dx")).await?,
            host(wt.grad(&grads).expect("dw")).await?,
            host(gamma.grad(&grads).expect("dgamma")).await?,
            host(beta.grad(&grads).expect("dbeta")).await?,
        ]);
    }
    let case = format!("images {shape:?} stride {stride}, {c_out} channels");
    Ok(QUANTITIES
        .iter()
        .zip(readings[1].iter().zip(&readings[0]))
        .map(|(q, (g, w))| compare("stem patches + matmul + BatchNorm", &case, q, g, w, 1e-4))
        .collect())
}

/// A 1×1 convolution as the GPU path runs it (rows times the transposed weight) and its two
/// gradients, against burn's matmul on flex.
async fn dense_case(gpu: &Device, rows: usize, k: usize, c_out: usize) -> Result<Vec<KernelCheck>, String> {
    let x = values(rows * k, 16, -2.0, 2.0);
    let weight = values(c_out * k, 17, -1.0, 1.0);
    let up = values(rows * c_out, 18, -1.0, 1.0);
    let mut readings = Vec::new();
    for (device, kernels) in [(Device::flex().autodiff(), false), (gpu.clone().autodiff(), true)] {
        let xt = tensor(&x, [rows, k], &device).require_grad();
        let wt = tensor(&weight, [c_out, k, 1, 1], &device).require_grad();
        let y: Tensor<2> = if kernels {
            Tensor::from_dispatch(Dispatch::dense(xt.clone().into_dispatch(), wt.clone().into_dispatch()))
        } else {
            xt.clone().matmul(wt.clone().reshape([c_out, k]).transpose())
        };
        let grads = (y.clone() * tensor(&up, [rows, c_out], &device)).sum().backward();
        readings.push([
            host(y.inner()).await?,
            host(xt.grad(&grads).expect("dx")).await?,
            host(wt.grad(&grads).expect("dw")).await?,
        ]);
    }
    let case = format!("[{rows}, {k}] × [{c_out}, {k}]ᵀ");
    Ok(["output", "dx", "dw"]
        .iter()
        .zip(readings[1].iter().zip(&readings[0]))
        .map(|(q, (g, w))| compare("1×1 conv (matmul)", &case, q, g, w, 1e-4))
        .collect())
}

/// graft's AdamW kernel against burn's AdamW on flex, four steps at changing rates.
async fn adamw_case(gpu: &Device) -> Result<Vec<KernelCheck>, String> {
    use burn::optim::{AdamWConfig, Optimizer};

    use crate::fused_adamw::{self, AdamHyper};

    let n = 37;
    let p0 = values(n, 20, -1.0, 1.0);
    let h = AdamHyper { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay: 0.05 };
    let burn_adamw = AdamWConfig::new().with_weight_decay(h.weight_decay).build();
    let flex = Device::flex();
    let (mut want, mut state) = (tensor(&p0, [n], &flex), None);
    let (mut got, mut moments) = (tensor(&p0, [n], gpu), None);
    let mut out = Vec::new();
    for step in 1..=4u32 {
        let g = values(n, 30 + step, -2.0, 2.0);
        let lr = 0.01 * f64::from(step);
        (want, state) = burn_adamw.step(lr, want, tensor(&g, [n], &flex), state);
        let (p, m, v) = fused_adamw::launch(got, tensor(&g, [n], gpu), moments, lr, step as usize, &h);
        got = p;
        moments = Some((m, v));
        let case = format!("{n} values, step {step}");
        out.push(compare("AdamW", &case, "parameters", &host(got.clone()).await?, &host(want.clone()).await?, 1e-6));
    }
    Ok(out)
}

/// graft's paired AdamW kernel (two parameters, each at its own rate, updated in place) against
/// burn's AdamW on flex, four steps: lengths that do and do not allow vectors of 4.
async fn adamw_pair_case(gpu: &Device) -> Result<Vec<KernelCheck>, String> {
    use burn::optim::{AdamWConfig, Optimizer};

    use crate::fused_adamw::{self, AdamHyper, PairItem};

    let h = AdamHyper { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay: 0.05 };
    let burn_adamw = AdamWConfig::new().with_weight_decay(h.weight_decay).build();
    let flex = Device::flex();
    let mut out = Vec::new();
    for (n_a, n_b) in [(37, 64), (96, 128)] {
        let (init_a, init_b) = (values(n_a, 21, -1.0, 1.0), values(n_b, 22, -1.0, 1.0));
        let (mut want_a, mut state_a) = (tensor(&init_a, [n_a], &flex), None);
        let (mut want_b, mut state_b) = (tensor(&init_b, [n_b], &flex), None);
        let (mut got_a, mut got_b) = (tensor(&init_a, [n_a], gpu), tensor(&init_b, [n_b], gpu));
        let (mut moments_a, mut moments_b) = (None, None);
        for step in 1..=4u32 {
            let (g_a, g_b) = (values(n_a, 40 + step, -2.0, 2.0), values(n_b, 50 + step, -2.0, 2.0));
            let (lr_a, lr_b) = (0.01 * f64::from(step), 0.003 * f64::from(step));
            (want_a, state_a) = burn_adamw.step(lr_a, want_a, tensor(&g_a, [n_a], &flex), state_a);
            (want_b, state_b) = burn_adamw.step(lr_b, want_b, tensor(&g_b, [n_b], &flex), state_b);
            let a = PairItem { param: got_a, grad: tensor(&g_a, [n_a], gpu), moments: moments_a, lr: lr_a };
            let b = PairItem { param: got_b, grad: tensor(&g_b, [n_b], gpu), moments: moments_b, lr: lr_b };
            let [(pa, ma, va), (pb, mb, vb)] = fused_adamw::launch_pair(a, b, step as usize, &h);
            (got_a, moments_a, got_b, moments_b) = (pa, Some((ma, va)), pb, Some((mb, vb)));
            let case = format!("{n_a} and {n_b} values, step {step}");
            for (which, got, want) in [("a", &got_a, &want_a), ("b", &got_b, &want_b)] {
                let quantity = format!("parameters {which} (pair)");
                out.push(compare(
                    "AdamW",
                    &case,
                    &quantity,
                    &host(got.clone()).await?,
                    &host(want.clone()).await?,
                    1e-6,
                ));
            }
        }
    }
    Ok(out)
}
