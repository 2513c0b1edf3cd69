//! The GPU operations as a burn backend extension: one trait, implemented by launching the
//! kernels on `CubeBackend` (every CubeCL runtime: WebGPU, Vulkan, Metal, CUDA…), made lazy for
//! burn's fusion by the macro, and differentiable on `Autodiff` by hand (see `autodiff.rs`).
//!
//! The kernels are launched unchecked (no bounds check per access, which costs every load on
//! the GPU). That is sound because each kernel returns before touching memory when its thread
//! is past its output's length, and every index it forms is within the shapes its buffers were
//! allocated with here (outputs) or checked for here (inputs, made contiguous first).
#![allow(unsafe_code)]

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend};
use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::kernel::matmul::{matmul, MatmulStrategy};
use burn_cubecl::ops::{permute, reshape};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

use super::dense_grad;
use super::kernels::{self, AdamScalars, AdamScalarsLaunch};

/// What a layer is, beside its tensors: the kernels' compile-time switches and the geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerSpec {
    /// BatchNorm with running statistics (`γ, β, μ, σ²`); otherwise a folded layer's bias in
    /// the `β` slot (the other three are ignored).
    pub norm: bool,
    pub relu6: bool,
    /// Depthwise stride (1 or 2); 1 elsewhere.
    pub stride: usize,
    pub eps: f32,
}

/// `[N, H, W, C]` → `[N, OH, OW, C]` for a 3x3 convolution with padding 1.
pub fn depthwise_out_shape(x: &Shape, stride: usize) -> Shape {
    let [n, h, w, c] = [x[0], x[1], x[2], x[3]];
    Shape::new([n, (h - 1) / stride + 1, (w - 1) / stride + 1, c])
}

fn patches_shape(x: &Shape, stride: usize) -> Shape {
    let [n, _, h, w] = [x[0], x[1], x[2], x[3]];
    Shape::new([n * ((h - 1) / stride + 1) * ((w - 1) / stride + 1), 27])
}

#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait MobileNetOps: Backend {
    /// Depthwise 3x3 (padding 1) + BatchNorm or bias + optional ReLU6, NHWC in and out.
    #[fusion(dtype = x, shape = depthwise_out_shape(x, spec.stride))]
    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self>;

    /// BatchNorm or bias + optional ReLU6 on `[M, C]` rows (a 1x1 convolution's output).
    #[fusion(dtype = z, shape = z)]
    fn affine(
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self>;

    /// [`MobileNetOps::affine`] plus the block's residual `r` (same shape as `z`).
    #[fusion(dtype = z, shape = z)]
    fn affine_residual(
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self>;

    /// `x · wᵀ`: rows `[M, K]` times a weight `[C_out, …]` flattened to `[C_out, K]` (a 1x1
    /// convolution over NHWC rows; the stem over its patches). Its gradients come out in the
    /// weight's own layout, ready for the optimizer without a copy.
    #[fusion(dtype = x, shape = Shape::new([x[0], weight[0]]))]
    fn dense(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The stem's 3x3 patches (padding 1) of NCHW RGB images, as `[N·OH·OW, 27]` rows.
    #[fusion(dtype = x, shape = patches_shape(x, *stride))]
    fn stem_patches(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self>;
}

/// The backward passes, called by the autodiff steps on the inner backend.
// A layer's gradient needs its input, weight and four BatchNorm vectors; an AdamW pair returns
// two parameters' values and moments.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
pub trait MobileNetGrads: Backend {
    /// Gradients of [`MobileNetOps::depthwise`]: `(dx, dweight, dgamma, dbeta)`.
    #[fusion(meta = |_grad, x, weight, gamma, _beta, _mean, _var, _spec| (x.clone(), weight.clone(), gamma.clone(), gamma.clone()))]
    fn depthwise_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`MobileNetOps::affine`]: `(dz, dgamma, dbeta)` (a residual's gradient is
    /// the upstream gradient itself).
    #[fusion(meta = |_grad, z, gamma, _beta, _mean, _var, _spec| (z.clone(), gamma.clone(), gamma.clone()))]
    fn affine_backward(
        grad: FloatTensor<Self>,
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// One AdamW step: `(param, m, v)` updated from the gradient. `first`: the moments start
    /// at zero and `m`, `v` are not read.
    #[fusion(meta = |param, _grad, _m, _v, _scalars, _first| (param.clone(), param.clone(), param.clone()))]
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scalars: AdamScalars,
        first: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Two parameters' AdamW steps (`a` at `scalars_a`, `b` at `scalars_b`): `(param, m, v)` of
    /// each. One launch, updating in place, where none of the six tensors is shared (else two
    /// launches of [`MobileNetGrads::adamw_step`]). `first`: `m_*`, `v_*` are not read.
    #[fusion(meta = |param_a, _ga, _ma, _va, param_b, _gb, _mb, _vb, _sa, _sb, _first| (param_a.clone(), param_a.clone(), param_a.clone(), param_b.clone(), param_b.clone(), param_b.clone()))]
    fn adamw_pair(
        param_a: FloatTensor<Self>,
        grad_a: FloatTensor<Self>,
        m_a: FloatTensor<Self>,
        v_a: FloatTensor<Self>,
        param_b: FloatTensor<Self>,
        grad_b: FloatTensor<Self>,
        m_b: FloatTensor<Self>,
        v_b: FloatTensor<Self>,
        scalars_a: AdamScalars,
        scalars_b: AdamScalars,
        first: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// `dz · w`: the rows' gradient of [`MobileNetOps::dense`].
    #[fusion(dtype = grad, shape = Shape::new([grad[0], weight.num_elements() / weight[0]]))]
    fn dense_input_grad(grad: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `dzᵀ · x` shaped like the weight: the weight's gradient of [`MobileNetOps::dense`].
    #[fusion(dtype = grad, shape = weight.clone())]
    fn dense_weight_grad(grad: FloatTensor<Self>, x: FloatTensor<Self>, weight: Shape) -> FloatTensor<Self>;

    /// The images' gradient from the gradient of [`MobileNetOps::stem_patches`].
    #[fusion(dtype = grad, shape = images.clone())]
    fn stem_patches_backward(grad: FloatTensor<Self>, images: Shape, stride: usize) -> FloatTensor<Self>;
}

/// A new contiguous f32 tensor on `like`'s device (never pitched: the kernels index rows flat).
pub(super) fn empty(like: &CubeTensor, shape: Shape) -> CubeTensor {
    let handle = like.client.empty(shape.num_elements() * DType::F32.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, DType::F32)
}

/// Launch geometry for `units` threads of one kernel.
pub(super) fn grid(like: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&like.client, units);
    (calculate_cube_count_elemwise(&like.client, units, dim), dim)
}

pub(super) fn flat(t: CubeTensor) -> BufferArg {
    assert_eq!(t.dtype, DType::F32, "graft's GPU kernels compute in f32");
    into_contiguous(t).into_buffer_arg()
}

/// Channels per vector: 4 wherever the channel count allows (every MobileNetV2 layer), else 1.
fn vector_size(channels: usize) -> usize {
    if channels.is_multiple_of(4) {
        4
    } else {
        1
    }
}

/// Rows per thread of the row-tiled kernels: enough threads (`tiles × channel vectors`) to
/// fill a GPU, enough rows per thread to amortise its set-up (and, backward, to keep the
/// partial sums and their final reduction small).
fn rows_per_tile(rows: usize, channel_vectors: usize, threads: usize) -> usize {
    (rows * channel_vectors / threads).clamp(4, 1024)
}

/// Threads the forward kernels aim for; the backward ones take fewer, longer rows.
const FORWARD_THREADS: usize = 1 << 16;
const BACKWARD_THREADS: usize = 1 << 14;

impl MobileNetOps for CubeBackend {
    fn depthwise(
        x: CubeTensor,
        weight: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        mean: CubeTensor,
        var: CubeTensor,
        spec: LayerSpec,
    ) -> CubeTensor {
        let shape = x.meta.shape().clone();
        let (h, w, c) = (shape[1], shape[2], shape[3]);
        let out_shape = depthwise_out_shape(&shape, spec.stride);
        let (oh, ow) = (out_shape[1], out_shape[2]);
        let rows = out_shape[0] * oh;
        let vs = vector_size(c);
        let cvs = c / vs;
        let y = empty(&x, out_shape);
        let (count, dim) = grid(&y, rows * cvs);
        unsafe {
            kernels::depthwise_forward::launch_unchecked(
                &y.client.clone(),
                count,
                dim,
                vs,
                flat(x),
                flat(weight),
                flat(gamma),
                flat(beta),
                flat(mean),
                flat(var),
                y.clone().into_buffer_arg(),
                h,
                w,
                oh,
                ow,
                cvs,
                rows,
                spec.eps,
                spec.stride,
                spec.norm,
                spec.relu6,
            );
        }
        y
    }

    fn affine(
        z: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        mean: CubeTensor,
        var: CubeTensor,
        spec: LayerSpec,
    ) -> CubeTensor {
        affine_launch(z, gamma, beta, mean, var, None, spec)
    }

    fn affine_residual(
        z: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        mean: CubeTensor,
        var: CubeTensor,
        residual: CubeTensor,
        spec: LayerSpec,
    ) -> CubeTensor {
        affine_launch(z, gamma, beta, mean, var, Some(residual), spec)
    }

    fn dense(x: CubeTensor, weight: CubeTensor) -> CubeTensor {
        let rhs = permute(weight_2d(weight), &[1, 0]);
        matmul(x, rhs, None, MatmulStrategy::default(), DType::F32).expect("a matmul of f32 rows")
    }

    fn stem_patches(x: CubeTensor, stride: usize) -> CubeTensor {
        let shape = x.meta.shape().clone();
        let (h, w) = (shape[2], shape[3]);
        let out_shape = patches_shape(&shape, stride);
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let pixels = out_shape[0];
        let patches = empty(&x, out_shape);
        let (count, dim) = grid(&patches, pixels);
        unsafe {
            kernels::stem_patches::launch_unchecked(
                &patches.client.clone(),
                count,
                dim,
                flat(x),
                patches.clone().into_buffer_arg(),
                h,
                w,
                oh,
                ow,
                pixels,
                stride,
            );
        }
        patches
    }
}

fn affine_launch(
    z: CubeTensor,
    gamma: CubeTensor,
    beta: CubeTensor,
    mean: CubeTensor,
    var: CubeTensor,
    residual: Option<CubeTensor>,
    spec: LayerSpec,
) -> CubeTensor {
    let shape = z.meta.shape().clone();
    let c = shape[shape.num_dims() - 1];
    let m_rows = shape.num_elements() / c;
    let vs = vector_size(c);
    let cvs = c / vs;
    let tile = rows_per_tile(m_rows, cvs, FORWARD_THREADS);
    let tiles = m_rows.div_ceil(tile);
    let y = empty(&z, shape);
    let (count, dim) = grid(&y, tiles * cvs);
    let add = residual.is_some();
    // Without a residual the kernel never reads that slot: bind `z` there.
    let residual = residual.unwrap_or_else(|| z.clone());
    unsafe {
        kernels::affine_forward::launch_unchecked(
            &y.client.clone(),
            count,
            dim,
            vs,
            flat(z),
            flat(gamma),
            flat(beta),
            flat(mean),
            flat(var),
            flat(residual),
            y.clone().into_buffer_arg(),
            cvs,
            m_rows,
            tile,
            tiles,
            spec.eps,
            spec.norm,
            spec.relu6,
            add,
        );
    }
    y
}

impl MobileNetGrads for CubeBackend {
    fn depthwise_backward(
        grad: CubeTensor,
        x: CubeTensor,
        weight: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        mean: CubeTensor,
        var: CubeTensor,
        spec: LayerSpec,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        assert!(spec.norm, "only trainable (BatchNorm) layers have a backward pass");
        let in_shape = x.meta.shape().clone();
        let (n, h, w, c) = (in_shape[0], in_shape[1], in_shape[2], in_shape[3]);
        let out_shape = depthwise_out_shape(&in_shape, spec.stride);
        let (oh, ow) = (out_shape[1], out_shape[2]);
        let rows = n * oh;
        let vs = vector_size(c);
        let cvs = c / vs;
        let gs = empty(&x, out_shape);
        let partial = empty(&x, Shape::new([rows, 11, c]));
        let dx = empty(&x, in_shape);
        let dweight = empty(&x, Shape::new([c, 1, 3, 3]));
        let dgamma = empty(&x, Shape::new([c]));
        let dbeta = empty(&x, Shape::new([c]));
        let client = x.client.clone();
        let weight = into_contiguous(weight);
        let (count, dim) = grid(&x, rows * cvs);
        unsafe {
            kernels::depthwise_backward_prepare::launch_unchecked(
                &client,
                count,
                dim,
                vs,
                flat(x),
                flat(weight.clone()),
                flat(gamma),
                flat(beta),
                flat(mean),
                flat(var),
                flat(grad),
                gs.clone().into_buffer_arg(),
                partial.clone().into_buffer_arg(),
                h,
                w,
                oh,
                ow,
                cvs,
                rows,
                spec.eps,
                spec.stride,
                spec.relu6,
            );
            let (count, dim) = grid(&dx, n * h * cvs + cvs);
            kernels::depthwise_backward_input_finish::launch_unchecked(
                &client,
                count,
                dim,
                vs,
                gs.into_buffer_arg(),
                flat(weight),
                dx.clone().into_buffer_arg(),
                partial.into_buffer_arg(),
                dgamma.clone().into_buffer_arg(),
                dbeta.clone().into_buffer_arg(),
                dweight.clone().into_buffer_arg(),
                h,
                w,
                oh,
                ow,
                cvs,
                n * h,
                rows,
                spec.stride,
            );
        }
        (dx, dweight, dgamma, dbeta)
    }

    fn affine_backward(
        grad: CubeTensor,
        z: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        mean: CubeTensor,
        var: CubeTensor,
        spec: LayerSpec,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        assert!(spec.norm, "only trainable (BatchNorm) layers have a backward pass");
        let shape = z.meta.shape().clone();
        let c = shape[shape.num_dims() - 1];
        let m_rows = shape.num_elements() / c;
        let vs = vector_size(c);
        let cvs = c / vs;
        let tile = rows_per_tile(m_rows, cvs, BACKWARD_THREADS);
        let tiles = m_rows.div_ceil(tile);
        let dz = empty(&z, shape);
        let partial = empty(&z, Shape::new([tiles, 2, c]));
        let dgamma = empty(&z, Shape::new([c]));
        let dbeta = empty(&z, Shape::new([c]));
        let client = z.client.clone();
        let (count, dim) = grid(&z, tiles * cvs);
        unsafe {
            kernels::affine_backward_prepare::launch_unchecked(
                &client,
                count,
                dim,
                vs,
                flat(z),
                flat(gamma),
                flat(beta),
                flat(mean),
                flat(var),
                flat(grad),
                dz.clone().into_buffer_arg(),
                partial.clone().into_buffer_arg(),
                cvs,
                m_rows,
                tile,
                tiles,
                spec.eps,
                spec.relu6,
            );
            let (count, dim) = grid(&dgamma, cvs);
            kernels::affine_backward_finish::launch_unchecked(
                &client,
                count,
                dim,
                vs,
                partial.into_buffer_arg(),
                dgamma.clone().into_buffer_arg(),
                dbeta.clone().into_buffer_arg(),
                cvs,
                tiles,
            );
        }
        (dz, dgamma, dbeta)
    }

    fn stem_patches_backward(grad: CubeTensor, images: Shape, stride: usize) -> CubeTensor {
        let (h, w) = (images[2], images[3]);
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let dx = empty(&grad, images);
        let (count, dim) = grid(&dx, dx.meta.num_elements());
        unsafe {
            kernels::stem_patches_backward::launch_unchecked(
                &dx.client.clone(),
                count,
                dim,
                flat(grad),
                dx.clone().into_buffer_arg(),
                h,
                w,
                oh,
                ow,
                stride,
            );
        }
        dx
    }

    fn adamw_step(
        param: CubeTensor,
        grad: CubeTensor,
        m: CubeTensor,
        v: CubeTensor,
        s: AdamScalars,
        first: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let shape = param.meta.shape().clone();
        let len = shape.num_elements();
        let vs = vector_size(len);
        let (p_out, m_out, v_out) = (empty(&param, shape.clone()), empty(&param, shape.clone()), empty(&param, shape));
        let (count, dim) = grid(&param, len / vs);
        let scalars = AdamScalarsLaunch::new(s.lr, s.beta_1, s.beta_2, s.epsilon, s.bias_1, s.bias_2, s.decay);
        unsafe {
            kernels::adamw_step::launch_unchecked(
                &param.client.clone(),
                count,
                dim,
                vs,
                flat(param),
                flat(grad),
                flat(m),
                flat(v),
                p_out.clone().into_buffer_arg(),
                m_out.clone().into_buffer_arg(),
                v_out.clone().into_buffer_arg(),
                len / vs,
                scalars,
                first,
            );
        }
        (p_out, m_out, v_out)
    }

    fn adamw_pair(
        param_a: CubeTensor,
        grad_a: CubeTensor,
        m_a: CubeTensor,
        v_a: CubeTensor,
        param_b: CubeTensor,
        grad_b: CubeTensor,
        m_b: CubeTensor,
        v_b: CubeTensor,
        scalars_a: AdamScalars,
        scalars_b: AdamScalars,
        first: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        // In place only where nothing else holds these buffers (burn's own in-place ops ask the
        // same); a parameter some caller still holds (a cloned module) keeps its old value.
        let writable = |t: &CubeTensor| t.can_mut() && t.is_contiguous() && t.dtype == DType::F32;
        let moments_writable = first || [&m_a, &v_a, &m_b, &v_b].into_iter().all(writable);
        if !(writable(&param_a) && writable(&param_b) && moments_writable) {
            let (pa, ma, va) = Self::adamw_step(param_a, grad_a, m_a, v_a, scalars_a, first);
            let (pb, mb, vb) = Self::adamw_step(param_b, grad_b, m_b, v_b, scalars_b, first);
            return (pa, ma, va, pb, mb, vb);
        }
        let (len_a, len_b) = (param_a.meta.num_elements(), param_b.meta.num_elements());
        let vs = if len_a.is_multiple_of(4) && len_b.is_multiple_of(4) { 4 } else { 1 };
        // On the first step the moments start here (the slots passed in may alias the gradient,
        // and WebGPU refuses a buffer bound both read-only and writable).
        let (m_a, v_a, m_b, v_b) = if first {
            let (sa, sb) = (param_a.meta.shape().clone(), param_b.meta.shape().clone());
            (empty(&param_a, sa.clone()), empty(&param_a, sa), empty(&param_b, sb.clone()), empty(&param_b, sb))
        } else {
            (m_a, v_a, m_b, v_b)
        };
        let (count, dim) = grid(&param_a, (len_a + len_b) / vs);
        let launch_scalars =
            |s: AdamScalars| AdamScalarsLaunch::new(s.lr, s.beta_1, s.beta_2, s.epsilon, s.bias_1, s.bias_2, s.decay);
        unsafe {
            kernels::adamw_pair_in_place::launch_unchecked(
                &param_a.client.clone(),
                count,
                dim,
                vs,
                param_a.clone().into_buffer_arg(),
                flat(grad_a),
                m_a.clone().into_buffer_arg(),
                v_a.clone().into_buffer_arg(),
                param_b.clone().into_buffer_arg(),
                flat(grad_b),
                m_b.clone().into_buffer_arg(),
                v_b.clone().into_buffer_arg(),
                len_a / vs,
                len_b / vs,
                launch_scalars(scalars_a),
                launch_scalars(scalars_b),
                first,
            );
        }
        (param_a, m_a, v_a, param_b, m_b, v_b)
    }

    fn dense_input_grad(grad: CubeTensor, weight: CubeTensor) -> CubeTensor {
        if dense_grad::own() {
            return dense_grad::input_grad(grad, weight_2d(weight));
        }
        matmul(grad, weight_2d(weight), None, MatmulStrategy::default(), DType::F32).expect("a matmul of f32 rows")
    }

    fn dense_weight_grad(grad: CubeTensor, x: CubeTensor, weight: Shape) -> CubeTensor {
        if dense_grad::own() && dense_grad::long_reduction(grad.meta.shape()[0]) {
            return reshape(dense_grad::weight_grad(grad, x), weight);
        }
        let lhs = permute(grad, &[1, 0]);
        let dw = matmul(lhs, x, None, MatmulStrategy::default(), DType::F32).expect("a matmul of f32 rows");
        reshape(dw, weight)
    }
}

/// A `[C_out, …]` weight as the `[C_out, K]` matrix it is in memory.
fn weight_2d(weight: CubeTensor) -> CubeTensor {
    let shape = weight.meta.shape().clone();
    let c_out = shape[0];
    reshape(into_contiguous(weight), Shape::new([c_out, shape.num_elements() / c_out]))
}
