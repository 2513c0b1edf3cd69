//! End-of-epoch validation and metrics.

use burn::module::Module;

use super::train_step::diverged;
use super::{EvalAccum, State, Trainer};
use crate::batch::{images_to_tensor, read_matrix};
use crate::config::Mode;
use crate::events::{EpochMetrics, Failure, TrainEvent, ValItem};
use crate::loss::batch_stats;
use crate::metrics::confusion_evaluation;

impl Trainer {
    pub(super) async fn validate_step(
        &mut self,
        epoch: usize,
        cursor: usize,
        mut acc: EvalAccum,
    ) -> Result<State, Failure> {
        let classes = self.dataset.classes.len();
        let labels_of = |idx: &[usize]| -> Vec<usize> { idx.iter().map(|&i| self.dataset.items[i].label).collect() };
        let mut next_cursor = self.val_idx.len();
        if let (Mode::Frozen, Some(cache)) = (self.cfg.mode, &self.val_cache) {
            let logits = self.head.valid().forward(cache.clone());
            let host = read_matrix(logits).await.map_err(Failure::device)?;
            let stats = batch_stats(&host, classes, &labels_of(&self.val_idx));
            acc.loss_sum += stats.loss_sum;
            acc.predictions.extend(stats.predictions);
            acc.rows.extend(stats.rows);
        } else if !self.val_idx.is_empty() {
            next_cursor = (cursor + self.cfg.batch_size).min(self.val_idx.len());
            let items = self.val_idx[cursor..next_cursor].to_vec();
            let x = images_to_tensor(self.prepare(&items, None)?, self.cfg.input_size, &self.device);
            let logits = self.head.valid().forward(self.backbone.valid().folded().forward(x));
            let host = read_matrix(logits).await.map_err(Failure::device)?;
            let stats = batch_stats(&host, classes, &labels_of(&items));
            acc.loss_sum += stats.loss_sum;
            acc.predictions.extend(stats.predictions);
            acc.rows.extend(stats.rows);
        }
        if !acc.loss_sum.is_finite() {
            return Err(diverged("validation loss", acc.loss_sum, epoch + 1, None));
        }
        if next_cursor < self.val_idx.len() {
            self.emit(TrainEvent::Validate { epoch: epoch + 1, done: next_cursor, total: self.val_idx.len() });
            return Ok(State::Validate { epoch, cursor: next_cursor, acc });
        }

        let seen = self.epoch.seen.max(1) as f32;
        let eval = (!self.val_idx.is_empty()).then(|| {
            let labels = labels_of(&self.val_idx);
            let mut eval = confusion_evaluation(classes, &labels, &acc.predictions, acc.loss_sum / labels.len() as f32);
            eval.items = self
                .val_idx
                .iter()
                .zip(&acc.rows)
                .map(|(&i, r)| ValItem {
                    name: self.dataset.items[i].name.clone(),
                    index: i,
                    label: self.dataset.items[i].label,
                    predicted: r.predicted,
                    confidence: r.confidence,
                    true_probability: r.true_probability,
                    loss: r.loss,
                })
                .collect();
            eval
        });
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: self.epoch.loss_sum / seen,
            train_accuracy: self.epoch.correct as f32 / seen,
            val_loss: eval.as_ref().map(|e| e.loss),
            val_accuracy: eval.as_ref().map(|e| e.accuracy),
            seconds: self.epoch.seconds,
        };
        self.history.push(metrics.clone());
        self.emit(TrainEvent::Epoch(metrics));
        self.take_snapshot(eval);
        if epoch + 1 < self.cfg.epochs {
            Ok(State::Train { epoch: epoch + 1, order: Vec::new(), cursor: 0 })
        } else {
            Ok(State::Over)
        }
    }
}
