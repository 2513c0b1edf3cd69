//! Frozen mode: the backbone runs once per image (and augmented view); features are cached.

use burn::module::Module;
use burn::tensor::Tensor;
use web_time::Instant;

use super::{State, Trainer};
use crate::batch::{images_to_tensor, read_matrix};
use crate::events::{Failure, PhaseKind, TrainEvent};

impl Trainer {
    pub(super) async fn extract_step(
        &mut self,
        view: usize,
        cursor: usize,
        mut pending: Vec<Tensor<2>>,
    ) -> Result<State, Failure> {
        let views = self.views();
        let is_val = view == views;
        let set_len = if is_val { self.val_idx.len() } else { self.train_idx.len() };
        let end = (cursor + self.cfg.batch_size).min(set_len);
        let items = if is_val { &self.val_idx } else { &self.train_idx }[cursor..end].to_vec();
        let total_images = self.train_idx.len() * views + self.val_idx.len();
        let done_before = view.min(views) * self.train_idx.len() + cursor;

        if !items.is_empty() {
            let t0 = Instant::now();
            let aug = (!is_val).then_some(view);
            let x = images_to_tensor(self.prepare(&items, aug)?, self.cfg.input_size, &self.device);
            // Extraction only happens in frozen mode, which always has the folded copy.
            let features = match &self.inference_backbone {
                Some(backbone) => backbone.forward(x),
                None => self.backbone.valid().folded().forward(x),
            };
            // A one-value readback waits for the batch to finish: honest timing, bounded queue.
            read_matrix(features.clone().slice([0..1, 0..1])).await.map_err(Failure::device)?;
            let dt = t0.elapsed().as_secs_f32();
            self.images_processed += items.len();
            pending.push(features);
            self.emit(TrainEvent::Extract {
                done: done_before + items.len(),
                total: total_images,
                images_per_sec: items.len() as f32 / dt.max(1e-6),
            });
        }
        if end < set_len {
            return Ok(State::Extract { view, cursor: end, pending });
        }
        let features = (!pending.is_empty()).then(|| Tensor::cat(pending, 0));
        if is_val {
            self.val_cache = features;
        } else if let Some(f) = features {
            self.train_cache.push(f);
        }
        if view + 1 < views || (view + 1 == views && !self.val_idx.is_empty()) {
            return Ok(State::Extract { view: view + 1, cursor: 0, pending: Vec::new() });
        }
        self.emit(TrainEvent::Phase { phase: PhaseKind::TrainingHead });
        Ok(State::Train { epoch: 0, order: Vec::new(), cursor: 0 })
    }
}
