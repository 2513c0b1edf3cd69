//! One training step: head only (frozen, warm-up) or every layer at its own learning rate.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Gradients, Tensor};
use graft_data::SeededRng;
use graft_model::{Backbone, Head};
use web_time::Instant;

use super::{EpochAccum, EvalAccum, State, Trainer};
use crate::batch::{images_to_tensor, index_tensor, read_matrix};
use crate::config::Mode;
use crate::events::{Failure, FailureReason, PhaseKind, StepProgress, TrainEvent};
use crate::loss::{batch_stats, cross_entropy, smoothed_targets};
use crate::optim::{GraftAdamW, ParamUpdate};

impl Trainer {
    fn backbone_trainable(&self, epoch: usize) -> bool {
        self.cfg.mode == Mode::Discriminative && epoch >= self.cfg.warmup_epochs
    }

    pub(super) async fn train_step(
        &mut self,
        epoch: usize,
        mut order: Vec<usize>,
        cursor: usize,
    ) -> Result<State, Failure> {
        if cursor == 0 {
            // Positions into `train_idx` (and rows of the feature cache), shuffled per epoch.
            order = (0..self.train_idx.len()).collect();
            SeededRng::new(self.cfg.seed.wrapping_add(1 + epoch as u64)).shuffle(&mut order);
            self.epoch = EpochAccum::default();
            if self.cfg.mode == Mode::Discriminative && epoch == self.cfg.warmup_epochs && epoch > 0 {
                self.emit(TrainEvent::Phase { phase: PhaseKind::FineTuning });
            }
        }
        let t0 = Instant::now();
        let end = (cursor + self.cfg.batch_size).min(order.len());
        let positions = &order[cursor..end];
        let items: Vec<usize> = positions.iter().map(|&p| self.train_idx[p]).collect();
        let labels: Vec<usize> = items.iter().map(|&i| self.dataset.items[i].label).collect();
        let classes = self.dataset.classes.len();
        let lr = self.cfg.lr * self.schedule.factor(self.global_step);
        // Dropout masks come from the run's seed and the step number: repeatable on any backend.
        let mut dropout_rng =
            SeededRng::new(self.cfg.seed ^ (self.global_step as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));

        let logits = if self.cfg.mode == Mode::Frozen {
            let view = epoch % self.train_cache.len().max(1);
            let idx = index_tensor(positions, &self.device);
            let features = self.train_cache[view].clone().select(0, idx).to_device(&self.autodiff);
            let logits = self.head.forward_train(features, &mut dropout_rng);
            self.update_head(logits.clone(), &labels, lr);
            logits
        } else if !self.backbone_trainable(epoch) {
            // Warm-up: the backbone runs without gradients; only the head learns.
            let x = images_to_tensor(self.prepare(&items, Some(epoch))?, self.cfg.input_size, &self.device);
            let features = self.backbone.valid().folded().forward(x).to_device(&self.autodiff);
            let logits = self.head.forward_train(features, &mut dropout_rng);
            self.update_head(logits.clone(), &labels, lr);
            logits
        } else {
            let x = images_to_tensor(self.prepare(&items, Some(epoch))?, self.cfg.input_size, &self.autodiff);
            let logits = self.head.forward_train(self.backbone.forward(x), &mut dropout_rng);
            self.update_all(logits.clone(), &labels, lr);
            logits
        };

        let host = read_matrix(logits.detach()).await.map_err(Failure::device)?;
        let stats = batch_stats(&host, classes, &labels);
        let step_in_epoch = cursor / self.cfg.batch_size + 1;
        if !stats.loss_sum.is_finite() {
            return Err(diverged("loss", stats.loss_sum, epoch + 1, Some(step_in_epoch)));
        }
        let dt = t0.elapsed().as_secs_f32();
        self.global_step += 1;
        self.images_processed += items.len();
        self.step_seconds.push(dt);
        self.epoch.loss_sum += stats.loss_sum;
        self.epoch.correct += stats.correct;
        self.epoch.seen += items.len();
        self.epoch.seconds += dt;

        let remaining =
            self.steps_per_epoch * self.cfg.epochs - self.global_step.min(self.steps_per_epoch * self.cfg.epochs);
        let recent = &self.step_seconds[self.step_seconds.len().saturating_sub(20)..];
        let mean_step = recent.iter().sum::<f32>() / recent.len() as f32;
        self.emit(TrainEvent::Step(StepProgress {
            epoch: epoch + 1,
            epochs: self.cfg.epochs,
            step: step_in_epoch,
            steps_per_epoch: self.steps_per_epoch,
            loss: stats.loss_sum / items.len() as f32,
            accuracy: stats.correct as f32 / items.len() as f32,
            lr,
            images_per_sec: items.len() as f32 / dt.max(1e-6),
            eta_secs: remaining as f32 * mean_step,
        }));

        if end < order.len() {
            return Ok(State::Train { epoch, order, cursor: end });
        }
        Ok(State::Validate { epoch, cursor: 0, acc: EvalAccum::default() })
    }

    fn loss(&self, logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
        let targets = smoothed_targets(labels, self.dataset.classes.len(), self.cfg.label_smoothing, &self.autodiff);
        cross_entropy(logits, targets)
    }

    fn update_head(&mut self, logits: Tensor<2>, labels: &[usize], lr: f64) {
        let mut grads = self.loss(logits, labels).backward();
        let head_grads = GradientsParams::from_module(&mut grads, &self.head);
        self.optimizer.step_in_place(lr, &mut self.head, head_grads);
    }

    /// One optimiser over every parameter (state is keyed by parameter), each layer at its own
    /// learning rate.
    fn update_all(&mut self, logits: Tensor<2>, labels: &[usize], lr: f64) {
        let mut grads = self.loss(logits, labels).backward();
        let factors = self.cfg.backbone_factors(self.backbone.num_layers());
        step_every_layer(&mut self.optimizer, &mut grads, &mut self.head, &mut self.backbone, lr, &factors);
    }
}

/// The discriminative update of a whole classifier from one backward pass: the head at `lr`,
/// backbone layer `i` (`features.i`) at `lr × factors[i]`. One optimiser over every parameter
/// (its state is keyed by parameter), in one update: on a GPU the parameters are stepped two per
/// launch, across layers at different rates, in place (each layer is replaced by its taken
/// version at once, so nothing else holds its parameters). The trainer's fine-tuning step and
/// the start-up check of the GPU (`crate::probe`) and the lab's LR finder all run this.
pub fn step_every_layer(
    optimizer: &mut GraftAdamW,
    grads: &mut Gradients,
    head: &mut Head,
    backbone: &mut Backbone,
    lr: f64,
    factors: &[f64],
) {
    let mut update = ParamUpdate::default();
    let g = GradientsParams::from_module(grads, head);
    *head = update.take(head.clone(), g, lr);
    let count = backbone.num_layers();
    let (f_stem, f_last) = (factors[0], factors[count - 1]);
    let g = GradientsParams::from_module(grads, &backbone.stem);
    backbone.stem = update.take(backbone.stem.clone(), g, lr * f_stem);
    let blocks = std::mem::take(&mut backbone.blocks);
    backbone.blocks = blocks
        .into_iter()
        .zip(&factors[1..count - 1])
        .map(|(block, f)| {
            let g = GradientsParams::from_module(grads, &block);
            update.take(block, g, lr * f)
        })
        .collect();
    let g = GradientsParams::from_module(grads, &backbone.last);
    backbone.last = update.take(backbone.last.clone(), g, lr * f_last);

    optimizer.apply(&mut update);
    *head = update.put(head.clone());
    backbone.stem = update.put(backbone.stem.clone());
    backbone.blocks = std::mem::take(&mut backbone.blocks).into_iter().map(|block| update.put(block)).collect();
    backbone.last = update.put(backbone.last.clone());
}

/// The message of a run stopped because a value stopped being a number.
pub(super) fn diverged(what: &str, value: f32, epoch: usize, step: Option<usize>) -> Failure {
    let kind = if value.is_nan() { "NaN" } else { "infinite" };
    let at = match step {
        Some(step) => format!("epoch {epoch} step {step}"),
        None => format!("epoch {epoch}"),
    };
    Failure::new(FailureReason::Diverged, format!("the {what} became {kind} at {at} — lower the learning rate"))
}
