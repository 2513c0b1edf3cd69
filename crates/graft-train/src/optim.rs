//! The trainer's optimizer: AdamW, as one GPU kernel per parameter where graft's GPU path runs
//! (see `graft_model::fused_adamw`), burn's own AdamW elsewhere: the same formula, the same
//! state, so a run's optimizer state means the same on every device.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use graft_model::fused_adamw::{self, AdamHyper};

#[derive(Clone)]
pub struct GraftAdamW {
    burn: AdamW,
    hyper: AdamHyper,
}

impl GraftAdamW {
    /// burn's `AdamWConfig` defaults (β = 0.9, 0.999, ε = 1e-5) and `weight_decay`.
    pub fn new(weight_decay: f32) -> Self {
        let hyper = AdamHyper { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay };
        let burn = AdamWConfig::new()
            .with_beta_1(hyper.beta_1)
            .with_beta_2(hyper.beta_2)
            .with_epsilon(hyper.epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self { burn, hyper }
    }
}

impl Optimizer for GraftAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !fused_adamw::applies(&tensor) {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, moments) = match state {
            Some(s) => (s.momentum.time + 1, Some((s.momentum.moment_1, s.momentum.moment_2))),
            None => (1, None),
        };
        let (param, m, v) = fused_adamw::step(tensor, grad, moments, lr, time, &self.hyper);
        (param, Some(AdamWState::new(AdaptiveMomentumState::new(time, m, v))))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// The optimizer every graft training step uses (trainer, benchmark, Lab).
pub fn adamw(weight_decay: f32) -> ModuleOptimizer {
    ModuleOptimizer::from(GraftAdamW::new(weight_decay))
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};

    use super::*;

    fn trained(optim: &mut ModuleOptimizer, device: &Device) -> Vec<f32> {
        let dev = device.clone().autodiff();
        let mut layer: Linear = LinearConfig::new(6, 3).init(&dev);
        layer.weight = Param::from_tensor(Tensor::<2>::from_floats(
            [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9], [-1.0, 1.1, 1.2], [1.3, -1.4, 1.5], [1.6, 1.7, -1.8]],
            &dev,
        ));
        for step in 0..3 {
            let x = Tensor::<2>::from_floats([[1.0, -2.0, 3.0, 0.5, -0.25, step as f32]], &dev);
            let loss = (layer.forward(x) * Tensor::<2>::from_floats([[1.0, -1.0, 2.0]], &dev)).sum();
            let g = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(1e-2, layer, g);
        }
        layer.weight.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn on_the_cpu_it_is_burns_adamw() {
        let device = Device::flex();
        let ours = trained(&mut adamw(1e-2), &device);
        let theirs = trained(&mut AdamWConfig::new().with_weight_decay(1e-2).init(), &device);
        assert_eq!(ours, theirs);
    }
}
