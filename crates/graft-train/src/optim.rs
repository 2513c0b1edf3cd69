//! The trainer's optimizer: AdamW over whole modules. Where graft's GPU path runs, parameters
//! are updated two per kernel launch, in place (`graft_model::fused_adamw::step_pair`: a
//! MobileNetV2 fine-tune step launches 79 AdamW kernels instead of 158), and burn's own AdamW
//! runs everywhere else: the same formula and the same state (moments kept flat, keyed by
//! parameter), so a run's optimizer state means the same on every device.
//!
//! A step takes the parameters out of their modules first ([`ParamUpdate::take`]), updates
//! them together ([`GraftAdamW::apply`]) and puts them back ([`ParamUpdate::put`]): a
//! parameter still held by its module could not be updated in place, and pairing needs every
//! parameter of the step at hand, across modules at different rates.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, GradientsParams, Optimizer};
use burn::tensor::{GradientCheckpointingStrategy, Shape, Tensor};
use graft_model::fused_adamw::{self, AdamHyper, PairItem};

#[derive(Clone)]
pub struct GraftAdamW {
    burn: AdamW,
    hyper: AdamHyper,
    /// Each parameter's step count and moments, flattened to one dimension.
    states: HashMap<ParamId, AdamWState<1>>,
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
        Self { burn, hyper, states: HashMap::new() }
    }

    /// Every parameter of `module` with a gradient in `grads`, updated at rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let mut update = ParamUpdate::default();
        let module = update.take(module, grads, lr);
        self.apply(&mut update);
        update.put(module)
    }

    /// [`GraftAdamW::step`] on a module kept in place: its parameters leave it for the update,
    /// so nothing else holds them and the GPU updates them in place.
    pub fn step_in_place<M: Module>(&mut self, lr: f64, module: &mut M, grads: GradientsParams) {
        let mut update = ParamUpdate::default();
        *module = update.take(module.clone(), grads, lr);
        self.apply(&mut update);
        *module = update.put(module.clone());
    }

    /// Updates every parameter taken into `update` (ready for [`ParamUpdate::put`]).
    pub fn apply(&mut self, update: &mut ParamUpdate) {
        // A GPU parameter waiting for a partner at the same step.
        let mut waiting: Option<(Taken, Option<AdamWState<1>>)> = None;
        for taken in std::mem::take(&mut update.taken) {
            let state = self.states.remove(&taken.place.id);
            if !fused_adamw::applies(&taken.param) {
                let Taken { param, grad, lr, place } = taken;
                let (param, state) = self.burn.step(lr, param, grad, state);
                self.record(update, place, param, state);
                continue;
            }
            match waiting.take() {
                Some((partner, partner_state))
                    if steps(partner_state.as_ref()) == steps(state.as_ref())
                        && partner.param.device() == taken.param.device() =>
                {
                    self.step_pair(update, (partner, partner_state), (taken, state));
                }
                Some(alone) => {
                    self.step_alone(update, alone);
                    waiting = Some((taken, state));
                }
                None => waiting = Some((taken, state)),
            }
        }
        if let Some(alone) = waiting {
            self.step_alone(update, alone);
        }
    }

    // The taken tensors move into the launch (a clone kept here would keep the GPU from updating
    // them in place).
    fn step_alone(&mut self, update: &mut ParamUpdate, (taken, state): (Taken, Option<AdamWState<1>>)) {
        let time = steps(state.as_ref()) + 1;
        let moments = state.map(|s| (s.momentum.moment_1, s.momentum.moment_2));
        let Taken { param, grad, lr, place } = taken;
        let (param, m, v) = fused_adamw::step(param, grad, moments, lr, time, &self.hyper);
        self.record(update, place, param, Some(AdamWState::new(AdaptiveMomentumState::new(time, m, v))));
    }

    fn step_pair(
        &mut self,
        update: &mut ParamUpdate,
        (a, state_a): (Taken, Option<AdamWState<1>>),
        (b, state_b): (Taken, Option<AdamWState<1>>),
    ) {
        let time = steps(state_a.as_ref()) + 1;
        let item = |taken: Taken, state: Option<AdamWState<1>>| {
            let Taken { param, grad, lr, place } = taken;
            (PairItem { param, grad, moments: state.map(|s| (s.momentum.moment_1, s.momentum.moment_2)), lr }, place)
        };
        let ((item_a, place_a), (item_b, place_b)) = (item(a, state_a), item(b, state_b));
        let [(pa, ma, va), (pb, mb, vb)] = fused_adamw::step_pair(item_a, item_b, time, &self.hyper);
        self.record(update, place_a, pa, Some(AdamWState::new(AdaptiveMomentumState::new(time, ma, va))));
        self.record(update, place_b, pb, Some(AdamWState::new(AdaptiveMomentumState::new(time, mb, vb))));
    }

    fn record(&mut self, update: &mut ParamUpdate, place: Place, param: Tensor<1>, state: Option<AdamWState<1>>) {
        if let Some(state) = state {
            self.states.insert(place.id, state);
        }
        update.updated.insert(place.id, Updated { param, place });
    }
}

/// Steps already taken by a parameter with this state.
fn steps(state: Option<&AdamWState<1>>) -> usize {
    state.map_or(0, |s| s.momentum.time)
}

/// Parameters taken out of their modules for one optimizer step, then their updated values.
#[derive(Default)]
pub struct ParamUpdate {
    taken: Vec<Taken>,
    updated: HashMap<ParamId, Updated>,
}

/// A parameter out of its module: its value and gradient on the inner backend, flattened.
struct Taken {
    param: Tensor<1>,
    grad: Tensor<1>,
    lr: f64,
    place: Place,
}

/// What a parameter needs to go back into its module.
struct Place {
    id: ParamId,
    shape: Shape,
    require_grad: bool,
    checkpointing: Option<GradientCheckpointingStrategy>,
}

struct Updated {
    param: Tensor<1>,
    place: Place,
}

impl ParamUpdate {
    /// Takes every parameter of `module` that has a gradient in `grads`, to be updated at rate
    /// `lr`; until [`ParamUpdate::put`] the module holds each one's gradient in its place.
    pub fn take<M: Module>(&mut self, module: M, mut grads: GradientsParams, lr: f64) -> M {
        module.map(&mut Take { update: self, grads: &mut grads, lr })
    }

    /// Puts the updated parameters back into `module` (a module given to [`ParamUpdate::take`]).
    pub fn put<M: Module>(&mut self, module: M) -> M {
        // Without `apply` the stand-ins (gradients) would go back as the parameters.
        assert!(self.taken.is_empty(), "ParamUpdate::put before GraftAdamW::apply");
        module.map(&mut Put { updated: &mut self.updated })
    }
}

struct Take<'a> {
    update: &'a mut ParamUpdate,
    grads: &'a mut GradientsParams,
    lr: f64,
}

impl ModuleMapper for Take<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let (require_grad, checkpointing, shape) =
            (tensor.is_require_grad(), tensor.gradient_checkpointing_strategy(), tensor.shape());
        let len = shape.num_elements();
        let stand_in = Tensor::from_inner(grad.clone());
        self.update.taken.push(Taken {
            param: tensor.inner().reshape([len]),
            grad: grad.reshape([len]),
            lr: self.lr,
            place: Place { id, shape, require_grad, checkpointing },
        });
        Param::from_mapped_value(id, stand_in, mapper)
    }
}

struct Put<'a> {
    updated: &'a mut HashMap<ParamId, Updated>,
}

impl ModuleMapper for Put<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let Some(Updated { param, place }) = self.updated.remove(&id) else {
            return Param::from_mapped_value(id, value, mapper);
        };
        // As burn's optimizers do: the updated value on the autodiff backend again, with the
        // parameter's own checkpointing strategy and gradient tracking.
        let mut tensor: Tensor<D> = Tensor::from_inner(param.reshape(place.shape));
        if let Some(strategy) = place.checkpointing {
            tensor = tensor.with_gradient_checkpointing_strategy(strategy);
        }
        if place.require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// The optimizer every graft training step uses (trainer, benchmark, Lab).
pub fn adamw(weight_decay: f32) -> GraftAdamW {
    GraftAdamW::new(weight_decay)
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};
    use graft_model::launches::LaunchCount;

    use super::*;

    /// Two small layers after three steps, each step as `step` updates them; their values.
    fn trained(
        device: &Device,
        mut step: impl FnMut(Linear, Linear, GradientsParams, GradientsParams) -> (Linear, Linear),
    ) -> Vec<f32> {
        let dev = device.clone().autodiff();
        // No bias in the first layer: three parameters, so one pair mixes the two layers' rates
        // and one parameter steps alone.
        let mut a: Linear = LinearConfig::new(6, 3).with_bias(false).init(&dev);
        a.weight = Param::from_tensor(Tensor::<2>::from_floats(
            [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9], [-1.0, 1.1, 1.2], [1.3, -1.4, 1.5], [1.6, 1.7, -1.8]],
            &dev,
        ));
        let mut b: Linear = LinearConfig::new(3, 8).init(&dev);
        b.weight = Param::from_tensor(Tensor::<2>::from_floats(
            [
                [0.3, -0.1, 0.2, 0.5, -0.4, 0.6, -0.7, 0.8],
                [0.2, 0.9, -0.3, -0.5, 0.1, 0.4, 0.6, -0.2],
                [-0.8, 0.7, 0.5, 0.3, -0.6, 0.2, 0.1, 0.9],
            ],
            &dev,
        ));
        b.bias = Some(Param::from_tensor(Tensor::<1>::from_floats([0.1, -0.2, 0.0, 0.3, 0.05, -0.1, 0.2, 0.4], &dev)));
        for s in 0..3 {
            let x = Tensor::<2>::from_floats([[1.0, -2.0, 3.0, 0.5, -0.25, s as f32]], &dev);
            let loss = b.forward(a.forward(x)).powf_scalar(2.0).sum();
            let mut grads = loss.backward();
            let ga = GradientsParams::from_module(&mut grads, &a);
            let gb = GradientsParams::from_module(&mut grads, &b);
            (a, b) = step(a, b, ga, gb);
        }
        [a.weight.val(), b.weight.val(), b.bias.expect("bias").val().unsqueeze()]
            .into_iter()
            .flat_map(|t| {
                futures::executor::block_on(t.into_data_async()).expect("read").try_to_vec::<f32>().expect("f32")
            })
            .collect()
    }

    /// burn's own AdamW, the first layer at 1e-2 and the second at 3e-3.
    fn burns(device: &Device) -> Vec<f32> {
        let mut optim = AdamWConfig::new().with_weight_decay(1e-2).init();
        trained(device, |a, b, ga, gb| (optim.step(1e-2, a, ga), optim.step(3e-3, b, gb)))
    }

    /// Ours, both layers in one update.
    fn ours(device: &Device) -> Vec<f32> {
        let mut optim = adamw(1e-2);
        trained(device, |a, b, ga, gb| {
            let mut update = ParamUpdate::default();
            let (a, b) = (update.take(a, ga, 1e-2), update.take(b, gb, 3e-3));
            optim.apply(&mut update);
            (update.put(a), update.put(b))
        })
    }

    #[test]
    fn on_the_cpu_it_is_burns_adamw() {
        let device = Device::flex();
        assert_eq!(ours(&device), burns(&device));
    }

    /// On a GPU (lavapipe here) the parameters are updated two per launch, in place, and
    /// agree with burn's AdamW on the CPU; a parameter some caller still holds is not
    /// overwritten (its pair takes two launches instead).
    #[test]
    fn on_a_gpu_it_steps_two_parameters_per_launch() {
        let _alone = crate::counting_launches_alone();
        let gpu = Device::wgpu(Default::default());
        let want = burns(&Device::flex());
        let got = ours(&gpu);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6 + 1e-5 * w.abs(), "value {i}: {g} on the GPU, {w} on the CPU");
        }

        let dev = gpu.autodiff();
        let layer: Linear = LinearConfig::new(64, 8).init(&dev);
        let held = layer.clone();
        let before = futures::executor::block_on(held.weight.val().into_data_async()).expect("read");
        let mut optim = adamw(0.0);
        let mut step = |layer: Linear| {
            let x = Tensor::<2>::ones([2, 64], &dev);
            let g = GradientsParams::from_grads(layer.forward(x).sum().backward(), &layer);
            let count = LaunchCount::start(false);
            let layer = optim.step(1e-2, layer, g);
            let _ = futures::executor::block_on(layer.weight.val().into_data_async()).expect("read");
            let adamw = count.finish().expect("a GPU build").groups.get("AdamW (graft)").map_or(0, |g| g.0);
            (layer, adamw)
        };
        let (layer, shared) = step(layer);
        assert_eq!(shared, 2, "a parameter still held elsewhere gets its own launch");
        let after = futures::executor::block_on(held.weight.val().into_data_async()).expect("read");
        assert_eq!(before, after, "the held copy keeps its values");
        drop(held);
        let (_, alone) = step(layer);
        assert_eq!(alone, 1, "weight and bias in one launch");
    }
}
