//! The step-able training process. Each [`Trainer::step`] does one batch of work (feature
//! extraction, a training step or a validation batch), reads back only what it reports, with
//! `into_data_async`, and emits [`TrainEvent`]s. Drivers await `step` in a loop and yield to their
//! event loop in between (the browser) or not (the CLI).

use async_channel::{Receiver, Sender};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use graft_data::{stratified_split, Dataset, DatasetError, Preprocess, SeededRng};
use graft_model::{Head, HeadKind, ImageClassifier, MobileNetV2};
use web_time::Instant;

use crate::batch::{images_to_tensor, index_tensor, read_matrix};
use crate::config::{Mode, TrainConfig};
use crate::events::{CancelToken, EpochMetrics, Evaluation, PhaseKind, StepProgress, Summary, TrainEvent};
use crate::loss::{batch_stats, cross_entropy, smoothed_targets};
use crate::metrics::confusion_evaluation;
use crate::schedule::OneCycle;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("invalid settings: {0}")]
    Config(String),
}

/// Where the run stands; each variant is resumed by the next `step`.
enum State {
    /// Frozen mode: extracting features for cached view `view` (`view == views` is validation).
    Extract {
        view: usize,
        cursor: usize,
        pending: Vec<Tensor<2>>,
    },
    Train {
        epoch: usize,
        order: Vec<usize>,
        cursor: usize,
    },
    Validate {
        epoch: usize,
        cursor: usize,
        acc: EvalAccum,
    },
    Finished,
}

#[derive(Default)]
struct EvalAccum {
    loss_sum: f32,
    predictions: Vec<usize>,
}

#[derive(Default)]
struct EpochAccum {
    loss_sum: f32,
    correct: usize,
    seen: usize,
    seconds: f32,
}

pub struct Trainer {
    cfg: TrainConfig,
    device: Device,
    autodiff: Device,
    dataset: Dataset,
    preprocess: Preprocess,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    /// Frozen: on the plain device, never trained. Discriminative: on the autodiff device.
    backbone: MobileNetV2,
    /// Always on the autodiff device.
    head: Head,
    optimizer: ModuleOptimizer,
    schedule: OneCycle,
    steps_per_epoch: usize,
    global_step: usize,
    events: Sender<TrainEvent>,
    receiver: Receiver<TrainEvent>,
    cancel: CancelToken,
    state: State,
    train_cache: Vec<Tensor<2>>,
    val_cache: Option<Tensor<2>>,
    epoch: EpochAccum,
    history: Vec<EpochMetrics>,
    evaluation: Option<Evaluation>,
    started: Instant,
    images_processed: usize,
    step_seconds: Vec<f32>,
}

impl Trainer {
    /// Prepares a run: validates the data, splits it, places the model on `device` (a plain,
    /// non-autodiff device) and emits `Loaded`. `model` is usually
    /// [`ImageClassifier::from_pretrained`] (new head) or a previous export (further training).
    pub fn new(
        cfg: TrainConfig,
        dataset: Dataset,
        model: ImageClassifier,
        device: &Device,
    ) -> Result<Self, TrainError> {
        dataset.validate()?;
        check_config(&cfg, &dataset, &model)?;
        let device = device.clone().without_autodiff();
        let autodiff = device.clone().autodiff();

        let (train_idx, val_idx) =
            stratified_split(&dataset.labels(), dataset.classes.len(), cfg.val_fraction, cfg.seed);
        let steps_per_epoch = train_idx.len().div_ceil(cfg.batch_size);
        let backbone = match cfg.mode {
            Mode::Frozen => model.backbone.valid().to_device(&device),
            Mode::Discriminative => model.backbone.fork(&autodiff).train(),
        };
        let head = model.head.fork(&autodiff).train();
        let optimizer = AdamWConfig::new().with_weight_decay(cfg.weight_decay).init();
        let (events, receiver) = async_channel::unbounded();

        let count = |idx: &[usize]| {
            let mut c = vec![0; dataset.classes.len()];
            idx.iter().for_each(|&i| c[dataset.items[i].label] += 1);
            c
        };
        let loaded = TrainEvent::Loaded {
            classes: dataset.classes.clone(),
            train_counts: count(&train_idx),
            val_counts: count(&val_idx),
            file_errors: dataset.errors.clone(),
            mode: cfg.mode,
            epochs: cfg.epochs,
            steps_per_epoch,
        };
        let state = match cfg.mode {
            Mode::Frozen => State::Extract { view: 0, cursor: 0, pending: Vec::new() },
            Mode::Discriminative => State::Train { epoch: 0, order: Vec::new(), cursor: 0 },
        };
        let trainer = Self {
            preprocess: Preprocess::imagenet(cfg.input_size),
            schedule: OneCycle::new(steps_per_epoch * cfg.epochs),
            cfg,
            device,
            autodiff,
            dataset,
            train_idx,
            val_idx,
            backbone,
            head,
            optimizer,
            steps_per_epoch,
            global_step: 0,
            events,
            receiver,
            cancel: CancelToken::default(),
            state,
            train_cache: Vec::new(),
            val_cache: None,
            epoch: EpochAccum::default(),
            history: Vec::new(),
            evaluation: None,
            started: Instant::now(),
            images_processed: 0,
            step_seconds: Vec::new(),
        };
        trainer.emit(loaded);
        if trainer.val_idx.is_empty() {
            trainer.emit(TrainEvent::Warning {
                message: "no validation images (too few images or split 0): accuracy is measured on training data only"
                    .into(),
            });
        }
        let first_phase = match trainer.cfg.mode {
            Mode::Frozen => PhaseKind::ExtractingFeatures,
            Mode::Discriminative if trainer.cfg.warmup_epochs > 0 => PhaseKind::WarmUp,
            Mode::Discriminative => PhaseKind::FineTuning,
        };
        trainer.emit(TrainEvent::Phase { phase: first_phase });
        Ok(trainer)
    }

    /// The event stream of this run (clone freely; every event goes to one receiver).
    pub fn events(&self) -> Receiver<TrainEvent> {
        self.receiver.clone()
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn classes(&self) -> &[String] {
        &self.dataset.classes
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Metrics so far (complete once finished).
    pub fn summary(&self) -> Summary {
        let seconds = self.started.elapsed().as_secs_f32();
        Summary {
            epochs: self.history.clone(),
            evaluation: self.evaluation.clone(),
            seconds,
            images_per_sec: self.images_processed as f32 / seconds.max(1e-6),
        }
    }

    /// The trained model, for inference and export (a validation copy: no autodiff, no dropout).
    pub fn model(&self) -> ImageClassifier {
        ImageClassifier { backbone: self.backbone.valid(), head: self.head.valid() }
    }

    /// Runs every remaining step, awaiting `yield_now()` between steps so a browser stays
    /// responsive.
    pub async fn run<F, Fut>(&mut self, mut yield_now: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        while self.step().await {
            yield_now().await;
        }
    }

    /// Does one batch of work. Returns `false` once the run is over (done, cancelled, failed).
    pub async fn step(&mut self) -> bool {
        if self.is_finished() {
            return false;
        }
        if self.cancel.is_cancelled() {
            self.state = State::Finished;
            self.emit(TrainEvent::Cancelled);
            return false;
        }
        let result = match std::mem::replace(&mut self.state, State::Finished) {
            State::Extract { view, cursor, pending } => self.extract_step(view, cursor, pending).await,
            State::Train { epoch, order, cursor } => self.train_step(epoch, order, cursor).await,
            State::Validate { epoch, cursor, acc } => self.validate_step(epoch, cursor, acc).await,
            State::Finished => Ok(State::Finished),
        };
        match result {
            Ok(State::Finished) => {
                self.finish();
                false
            }
            Ok(next) => {
                self.state = next;
                true
            }
            Err(message) => {
                self.emit(TrainEvent::Failed { message });
                false
            }
        }
    }

    fn emit(&self, event: TrainEvent) {
        // A dropped receiver only means nobody is listening any more.
        let _ = self.events.try_send(event);
    }

    fn finish(&mut self) {
        if let Some(eval) = self.evaluation.clone() {
            self.emit(TrainEvent::Evaluation(eval));
        }
        self.emit(TrainEvent::Done(self.summary()));
    }

    fn views(&self) -> usize {
        self.cfg.cached_views()
    }

    /// Preprocessed CHW floats of `items`: augmented (`Some(view)` seeds the draw) or eval.
    fn prepare(&self, items: &[usize], augment_view: Option<usize>) -> Vec<Vec<f32>> {
        items
            .iter()
            .map(|&i| {
                let image = &self.dataset.items[i].image;
                match (augment_view, &self.cfg.augment) {
                    (Some(view), Some(aug)) => {
                        let salt = (view as u64) << 32 | i as u64;
                        let mut rng = SeededRng::new(self.cfg.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        self.preprocess.train(image, aug, &mut rng)
                    }
                    _ => self.preprocess.eval(image),
                }
            })
            .collect()
    }

    // ---- frozen mode: feature cache -------------------------------------------------------

    async fn extract_step(&mut self, view: usize, cursor: usize, mut pending: Vec<Tensor<2>>) -> Result<State, String> {
        let views = self.views();
        let is_val = view == views;
        let set = if is_val { &self.val_idx } else { &self.train_idx };
        let end = (cursor + self.cfg.batch_size).min(set.len());
        let items = set[cursor..end].to_vec();
        let total_images = self.train_idx.len() * views + self.val_idx.len();
        let done_before = view.min(views) * self.train_idx.len() + cursor;

        if !items.is_empty() {
            let t0 = Instant::now();
            let aug = (!is_val).then_some(view);
            let x = images_to_tensor(self.prepare(&items, aug), self.cfg.input_size, &self.device);
            let features = self.backbone.forward(x);
            // A one-value readback waits for the batch to finish: honest timing, bounded queue.
            read_matrix(features.clone().slice([0..1, 0..1])).await?;
            let dt = t0.elapsed().as_secs_f32();
            self.images_processed += items.len();
            pending.push(features);
            self.emit(TrainEvent::Extract {
                done: done_before + items.len(),
                total: total_images,
                images_per_sec: items.len() as f32 / dt.max(1e-6),
            });
        }
        if end < set.len() {
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

    // ---- training ---------------------------------------------------------------------------

    fn backbone_trainable(&self, epoch: usize) -> bool {
        self.cfg.mode == Mode::Discriminative && epoch >= self.cfg.warmup_epochs
    }

    async fn train_step(&mut self, epoch: usize, mut order: Vec<usize>, cursor: usize) -> Result<State, String> {
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
            let x = images_to_tensor(self.prepare(&items, Some(epoch)), self.cfg.input_size, &self.device);
            let features = self.backbone.valid().forward(x).to_device(&self.autodiff);
            let logits = self.head.forward_train(features, &mut dropout_rng);
            self.update_head(logits.clone(), &labels, lr);
            logits
        } else {
            let x = images_to_tensor(self.prepare(&items, Some(epoch)), self.cfg.input_size, &self.autodiff);
            let logits = self.head.forward_train(self.backbone.forward(x), &mut dropout_rng);
            self.update_all(logits.clone(), &labels, lr);
            logits
        };

        let host = read_matrix(logits.detach()).await?;
        let stats = batch_stats(&host, classes, &labels);
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
            step: cursor / self.cfg.batch_size + 1,
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
        self.head = self.optimizer.step(lr, self.head.clone(), head_grads);
    }

    /// One optimiser over every parameter (state is keyed by parameter), stepped per layer so
    /// each layer gets its own learning rate.
    fn update_all(&mut self, logits: Tensor<2>, labels: &[usize], lr: f64) {
        let mut grads = self.loss(logits, labels).backward();
        let head_grads = GradientsParams::from_module(&mut grads, &self.head);
        self.head = self.optimizer.step(lr, self.head.clone(), head_grads);

        let count = self.backbone.num_layers();
        let factor = |i: usize| self.cfg.backbone_layer_factor(i, count);
        let (f_stem, f_last) = (factor(0), factor(count - 1));
        let block_factors: Vec<f64> = (1..count - 1).map(factor).collect();

        let g = GradientsParams::from_module(&mut grads, &self.backbone.stem);
        self.backbone.stem = self.optimizer.step(lr * f_stem, self.backbone.stem.clone(), g);
        let blocks = std::mem::take(&mut self.backbone.blocks);
        self.backbone.blocks = blocks
            .into_iter()
            .zip(block_factors)
            .map(|(block, f)| {
                let g = GradientsParams::from_module(&mut grads, &block);
                self.optimizer.step(lr * f, block, g)
            })
            .collect();
        let g = GradientsParams::from_module(&mut grads, &self.backbone.last);
        self.backbone.last = self.optimizer.step(lr * f_last, self.backbone.last.clone(), g);
    }

    // ---- validation -------------------------------------------------------------------------

    async fn validate_step(&mut self, epoch: usize, cursor: usize, mut acc: EvalAccum) -> Result<State, String> {
        let classes = self.dataset.classes.len();
        let labels_of = |idx: &[usize]| -> Vec<usize> { idx.iter().map(|&i| self.dataset.items[i].label).collect() };
        let mut next_cursor = self.val_idx.len();
        if let (Mode::Frozen, Some(cache)) = (self.cfg.mode, &self.val_cache) {
            let logits = self.head.valid().forward(cache.clone());
            let host = read_matrix(logits).await?;
            let stats = batch_stats(&host, classes, &labels_of(&self.val_idx));
            acc.loss_sum += stats.loss_sum;
            acc.predictions.extend(stats.predictions);
        } else if !self.val_idx.is_empty() {
            next_cursor = (cursor + self.cfg.batch_size).min(self.val_idx.len());
            let items = self.val_idx[cursor..next_cursor].to_vec();
            let x = images_to_tensor(self.prepare(&items, None), self.cfg.input_size, &self.device);
            let logits = self.head.valid().forward(self.backbone.valid().forward(x));
            let host = read_matrix(logits).await?;
            let stats = batch_stats(&host, classes, &labels_of(&items));
            acc.loss_sum += stats.loss_sum;
            acc.predictions.extend(stats.predictions);
        }
        if next_cursor < self.val_idx.len() {
            return Ok(State::Validate { epoch, cursor: next_cursor, acc });
        }

        let seen = self.epoch.seen.max(1) as f32;
        let eval = (!self.val_idx.is_empty()).then(|| {
            let labels = labels_of(&self.val_idx);
            confusion_evaluation(classes, &labels, &acc.predictions, acc.loss_sum / labels.len() as f32)
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
        self.evaluation = eval;
        if epoch + 1 < self.cfg.epochs {
            Ok(State::Train { epoch: epoch + 1, order: Vec::new(), cursor: 0 })
        } else {
            Ok(State::Finished)
        }
    }
}

fn check_config(cfg: &TrainConfig, dataset: &Dataset, model: &ImageClassifier) -> Result<(), TrainError> {
    let err = |m: String| Err(TrainError::Config(m));
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return err("epochs and batch size must be at least 1".into());
    }
    let valid_rates = cfg.lr > 0.0 && cfg.lr.is_finite() && cfg.backbone_ratio >= 0.0 && cfg.backbone_ratio.is_finite();
    if !valid_rates {
        return err("learning rate must be positive and the ratio non-negative".into());
    }
    if !(0.0..0.9).contains(&cfg.val_fraction) {
        return err("validation fraction must be in [0, 0.9)".into());
    }
    if cfg.input_size < 32 {
        return err("input size must be at least 32 pixels".into());
    }
    if model.head.num_classes() != dataset.classes.len() {
        return err(format!(
            "the head has {} outputs but the data has {} classes",
            model.head.num_classes(),
            dataset.classes.len()
        ));
    }
    if let HeadKind::KeepImagenet { rows } = &cfg.head {
        if rows.len() != dataset.classes.len() {
            return err("keep-ImageNet head needs one ImageNet class per user class".into());
        }
    }
    Ok(())
}
