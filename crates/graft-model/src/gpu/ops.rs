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
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

use super::kernels;

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
    #[fusion(dtype = x, shape = depthwise_out_shape(x, &spec.stride))]
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

    /// The stem's 3x3 patches (padding 1) of NCHW RGB images, as `[N·OH·OW, 27]` rows.
    #[fusion(dtype = x, shape = patches_shape(x, &stride))]
    fn stem_patches(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self>;
}

/// The backward passes, called by the autodiff steps on the inner backend.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
pub trait MobileNetGrads: Backend {
    /// Gradients of [`MobileNetOps::depthwise`]: `(dx, dweight, dgamma, dbeta)`.
    #[fusion(meta = |grad, x, weight, gamma, _beta, _mean, _var, _spec| (x.clone(), weight.clone(), gamma.clone(), gamma.clone()))]
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
    #[fusion(meta = |grad, z, gamma, _beta, _mean, _var, _spec| (z.clone(), gamma.clone(), gamma.clone()))]
    fn affine_backward(
        grad: FloatTensor<Self>,
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The images' gradient from the gradient of [`MobileNetOps::stem_patches`].
    #[fusion(dtype = grad, shape = images.clone())]
    fn stem_patches_backward(grad: FloatTensor<Self>, images: Shape, stride: usize) -> FloatTensor<Self>;
}

/// A new contiguous f32 tensor on `like`'s device (never pitched: the kernels index rows flat).
fn empty(like: &CubeTensor, shape: Shape) -> CubeTensor {
    let handle = like.client.empty(shape.num_elements() * DType::F32.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, DType::F32)
}

/// Launch geometry for `units` threads of one kernel.
fn grid(like: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&like.client, units);
    (calculate_cube_count_elemwise(&like.client, units, dim), dim)
}

fn flat(t: CubeTensor) -> BufferArg {
    assert_eq!(t.dtype, DType::F32, "graft's GPU kernels compute in f32");
    into_contiguous(t).into_buffer_arg()
}

/// Rows per partial sum of the backward passes: enough threads (`tiles × channels`) to fill a
/// GPU, enough rows per thread to keep the partial buffers and the final reduction small.
fn rows_per_tile(rows: usize, channels: usize) -> usize {
    const THREADS: usize = 1 << 15;
    (rows * channels / THREADS).clamp(16, 1024)
}

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
        let y = empty(&x, out_shape);
        let (count, dim) = grid(&y, y.meta.num_elements());
        unsafe {
            kernels::depthwise_forward::launch_unchecked(
                &y.client.clone(),
                count,
                dim,
                flat(x),
                flat(weight),
                flat(gamma),
                flat(beta),
                flat(mean),
                flat(var),
                y.clone().into_buffer_arg(),
                h,
                w,
                c,
                oh,
                ow,
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

    fn stem_patches(x: CubeTensor, stride: usize) -> CubeTensor {
        let shape = x.meta.shape().clone();
        let (h, w) = (shape[2], shape[3]);
        let out_shape = patches_shape(&shape, stride);
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let patches = empty(&x, out_shape);
        let (count, dim) = grid(&patches, patches.meta.num_elements());
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
    let y = empty(&z, shape);
    let (count, dim) = grid(&y, y.meta.num_elements());
    let add = residual.is_some();
    // Without a residual the kernel never reads that slot: bind `z` there.
    let residual = residual.unwrap_or_else(|| z.clone());
    unsafe {
        kernels::affine_forward::launch_unchecked(
            &y.client.clone(),
            count,
            dim,
            flat(z),
            flat(gamma),
            flat(beta),
            flat(mean),
            flat(var),
            flat(residual),
            y.clone().into_buffer_arg(),
            c,
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
        let (h, w, c) = (in_shape[1], in_shape[2], in_shape[3]);
        let out_shape = depthwise_out_shape(&in_shape, spec.stride);
        let (oh, ow) = (out_shape[1], out_shape[2]);
        let positions = out_shape[0] * oh * ow;
        let rows = rows_per_tile(positions, c);
        let tiles = positions.div_ceil(rows);
        let gs = empty(&x, out_shape);
        let partial = empty(&x, Shape::new([tiles, 11, c]));
        let dx = empty(&x, in_shape);
        let dweight = empty(&x, Shape::new([c, 1, 3, 3]));
        let dgamma = empty(&x, Shape::new([c]));
        let dbeta = empty(&x, Shape::new([c]));
        let client = x.client.clone();
        let weight = into_contiguous(weight);
        let (count, dim) = grid(&x, tiles * c);
        unsafe {
            kernels::depthwise_backward_prepare::launch_unchecked(
                &client,
                count,
                dim,
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
                c,
                oh,
                ow,
                positions,
                rows,
                tiles,
                spec.eps,
                spec.stride,
                spec.relu6,
            );
            let (count, dim) = grid(&dx, dx.meta.num_elements());
            kernels::depthwise_backward_input::launch_unchecked(
                &client,
                count,
                dim,
                gs.into_buffer_arg(),
                flat(weight),
                dx.clone().into_buffer_arg(),
                h,
                w,
                c,
                oh,
                ow,
                spec.stride,
            );
            let (count, dim) = grid(&dgamma, c);
            kernels::depthwise_backward_finish::launch_unchecked(
                &client,
                count,
                dim,
                partial.into_buffer_arg(),
                dgamma.clone().into_buffer_arg(),
                dbeta.clone().into_buffer_arg(),
                dweight.clone().into_buffer_arg(),
                c,
                tiles,
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
        let rows = rows_per_tile(m_rows, c);
        let tiles = m_rows.div_ceil(rows);
        let dz = empty(&z, shape);
        let partial = empty(&z, Shape::new([tiles, 2, c]));
        let dgamma = empty(&z, Shape::new([c]));
        let dbeta = empty(&z, Shape::new([c]));
        let client = z.client.clone();
        let (count, dim) = grid(&z, tiles * c);
        unsafe {
            kernels::affine_backward_prepare::launch_unchecked(
                &client,
                count,
                dim,
                flat(z),
                flat(gamma),
                flat(beta),
                flat(mean),
                flat(var),
                flat(grad),
                dz.clone().into_buffer_arg(),
                partial.clone().into_buffer_arg(),
                c,
                m_rows,
                rows,
                tiles,
                spec.eps,
                spec.relu6,
            );
            let (count, dim) = grid(&dgamma, c);
            kernels::affine_backward_finish::launch_unchecked(
                &client,
                count,
                dim,
                partial.into_buffer_arg(),
                dgamma.clone().into_buffer_arg(),
                dbeta.clone().into_buffer_arg(),
                c,
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
}
