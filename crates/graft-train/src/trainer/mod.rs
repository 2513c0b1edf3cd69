//! The step-able training process. Each [`Trainer::step`] does one batch of work (feature
//! extraction, a training step or a validation batch), reads back only what it reports, with
//! `into_data_async`, and emits [`TrainEvent`]s. Drivers await `step` in a loop and yield to their
//! event loop in between (the browser) or not (the CLI).

use async_channel::{Receiver, Sender};
use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use graft_data::{stratified_split, Dataset, DatasetError, Preprocess, SeededRng};
use graft_model::{Head, HeadKind, ImageClassifier, MobileNetV2};
use web_time::Instant;

mod extract;
mod train_step;
mod validate;

use crate::config::{Mode, TrainConfig};
use crate::events::{CancelToken, EpochMetrics, Evaluation, PhaseKind, Summary, TrainEvent};
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
