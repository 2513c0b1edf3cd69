//! AdamW's update of one parameter as one GPU kernel (burn's AdamW launches about a dozen
//! element-wise kernels per parameter, ~2,000 per MobileNetV2 fine-tune step), and of two
//! parameters in one launch ([`step_pair`]: 79 launches instead of 158 per fine-tune step).
//! The trainer's optimizer calls these where [`applies`] says so and burn's AdamW everywhere
//! else; all compute the same formula.

use burn::tensor::Tensor;

/// AdamW's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamHyper {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// Whether [`step`] runs for `param`: an f32 tensor on a GPU (CubeCL) device, in a build with
/// graft's GPU path, with the path on.
pub fn applies<const D: usize>(param: &Tensor<D>) -> bool {
    #[cfg(feature = "gpu")]
    {
        crate::gpu::enabled() && crate::launches::is_gpu(&param.device()) && param.dtype() == burn::tensor::DType::F32
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = param;
        false
    }
}

/// `(param, m, v)` after AdamW step number `time` (1-based) at learning rate `lr`; `moments`
/// is `None` on the first step. Only where [`applies`].
pub fn step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    lr: f64,
    time: usize,
    h: &AdamHyper,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    #[cfg(feature = "gpu")]
    {
        assert!(applies(&param), "fused_adamw::step runs on GPU tensors only");
        launch(param, grad, moments, lr, time, h)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (param, grad, moments, lr, time, h);
        unreachable!("fused_adamw::step runs only where fused_adamw::applies, which needs the gpu feature")
    }
}

/// A parameter's tensors for [`step_pair`]: its value, gradient, moments (`None` on the first
/// step), learning rate.
pub struct PairItem {
    pub param: Tensor<1>,
    pub grad: Tensor<1>,
    pub moments: Option<(Tensor<1>, Tensor<1>)>,
    pub lr: f64,
}

/// `(param, m, v)` of two parameters after AdamW step number `time` (both at the same step,
/// each at its own rate), in one launch where their tensors are not shared elsewhere. Only
/// where [`applies`] to both.
pub fn step_pair(a: PairItem, b: PairItem, time: usize, h: &AdamHyper) -> [(Tensor<1>, Tensor<1>, Tensor<1>); 2] {
    #[cfg(feature = "gpu")]
    {
        assert!(applies(&a.param) && applies(&b.param), "fused_adamw::step_pair runs on GPU tensors only");
        launch_pair(a, b, time, h)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (a, b, time, h);
        unreachable!("fused_adamw::step_pair runs only where fused_adamw::applies, which needs the gpu feature")
    }
}

/// [`step_pair`]'s launch, whether or not the GPU path is on (the kernel checks run it).
#[cfg(feature = "gpu")]
pub(crate) fn launch_pair(
    a: PairItem,
    b: PairItem,
    time: usize,
    h: &AdamHyper,
) -> [(Tensor<1>, Tensor<1>, Tensor<1>); 2] {
    use burn::backend::Dispatch;

    use crate::gpu::MobileNetGrads;

    assert_eq!(a.moments.is_none(), b.moments.is_none(), "a pair is at the same step");
    let first = a.moments.is_none();
    let into = |item: PairItem| {
        let scalars = scalars(item.lr, time, h);
        let (m, v) = item.moments.unwrap_or_else(|| (item.grad.clone(), item.grad.clone()));
        (item.param.into_dispatch(), item.grad.into_dispatch(), m.into_dispatch(), v.into_dispatch(), scalars)
    };
    let (pa, ga, ma, va, sa) = into(a);
    let (pb, gb, mb, vb, sb) = into(b);
    let (pa, ma, va, pb, mb, vb) = Dispatch::adamw_pair(pa, ga, ma, va, pb, gb, mb, vb, sa, sb, first);
    let t = |p| Tensor::from_dispatch(p);
    [(t(pa), t(ma), t(va)), (t(pb), t(mb), t(vb))]
}

/// The kernel's scalars at step `time` (1-based) and rate `lr`: the same as burn's AdamW (its
/// decay rate is computed in f64).
#[cfg(feature = "gpu")]
fn scalars(lr: f64, time: usize, h: &AdamHyper) -> crate::gpu::AdamScalars {
    let t = i32::try_from(time).unwrap_or(i32::MAX);
    #[allow(clippy::cast_possible_truncation)]
    crate::gpu::AdamScalars {
        lr: lr as f32,
        beta_1: h.beta_1,
        beta_2: h.beta_2,
        epsilon: h.epsilon,
        bias_1: 1.0 - h.beta_1.powi(t),
        bias_2: 1.0 - h.beta_2.powi(t),
        decay: (1.0 - lr * f64::from(h.weight_decay)) as f32,
    }
}

/// [`step`]'s kernel launch, whether or not the GPU path is on (the kernel checks run it).
#[cfg(feature = "gpu")]
pub(crate) fn launch<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    lr: f64,
    time: usize,
    h: &AdamHyper,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    use burn::backend::Dispatch;

    use crate::gpu::MobileNetGrads;

    let scalars = scalars(lr, time, h);
    let first = moments.is_none();
    let (m, v) = moments.unwrap_or_else(|| (grad.clone(), grad.clone()));
    let (p, m, v) = Dispatch::adamw_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        scalars,
        first,
    );
    (Tensor::from_dispatch(p), Tensor::from_dispatch(m), Tensor::from_dispatch(v))
}
