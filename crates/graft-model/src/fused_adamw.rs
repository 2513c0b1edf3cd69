//! AdamW's update of one parameter as one GPU kernel (burn's AdamW launches about a dozen
//! element-wise kernels per parameter, ~2,000 per MobileNetV2 fine-tune step). The trainer's
//! optimizer calls [`step`] where [`applies`] says so and burn's AdamW everywhere else; both
//! compute the same formula.

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

    use crate::gpu::{AdamScalars, MobileNetGrads};

    let t = i32::try_from(time).unwrap_or(i32::MAX);
    // The same scalars as burn's AdamW (its decay rate is computed in f64).
    #[allow(clippy::cast_possible_truncation)]
    let scalars = AdamScalars {
        lr: lr as f32,
        beta_1: h.beta_1,
        beta_2: h.beta_2,
        epsilon: h.epsilon,
        bias_1: 1.0 - h.beta_1.powi(t),
        bias_2: 1.0 - h.beta_2.powi(t),
        decay: (1.0 - lr * f64::from(h.weight_decay)) as f32,
    };
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
