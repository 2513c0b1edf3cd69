//! The step-able training process. [`Trainer::next_event`] is a pull stream: each call returns
//! the next [`TrainEvent`], doing one batch of work (feature extraction, a training step or a
//! validation batch) when no event is waiting, and reading back only what it reports, with
//! `into_data_async`. The stream ends with the run's outcome (`Done`, `Cancelled` or `Failed`);
//! [`Trainer::finish`] then hands over the model, manifest and summary. Drivers loop over
//! `next_event` and yield to their event loop in between (the browser) or not (the CLI).

use std::collections::VecDeque;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use graft_data::{stratified_split, Dataset, DatasetError, Preprocess, SeededRng};
use graft_model::{Backbone, Head, HeadKind, ImageClassifier};
use web_time::Instant;

mod extract;
mod train_step;
mod validate;

pub use train_step::step_every_layer;

use crate::config::{Mode, TrainConfig};
use crate::events::{CancelToken, EpochMetrics, Evaluation, Failure, PhaseKind, RunOutcome, Summary, TrainEvent};
use crate::export::Manifest;
use crate::schedule::OneCycle;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("invalid settings: {0}")]
    Config(String),
}

/// Where the run stands; each variant is resumed by the next step.
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
    Over,
}

#[derive(Default)]
struct EvalAccum {
    loss_sum: f32,
    predictions: Vec<usize>,
    rows: Vec<crate::loss::RowStat>,
}

#[derive(Default)]
struct EpochAccum {
    loss_sum: f32,
    correct: usize,
    seen: usize,
    seconds: f32,
}

/// The model as it was at the end of the last completed epoch, with that epoch's evaluation.
struct Snapshot {
    model: ImageClassifier,
    evaluation: Option<Evaluation>,
}

/// A trained model and the manifest that describes it (classes, head, preprocessing, settings,
/// metrics), ready for prediction and export.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    pub model: ImageClassifier,
    pub manifest: Manifest,
}

/// What a run leaves behind.
#[derive(Debug)]
pub struct RunResult {
    pub outcome: RunOutcome,
    pub summary: Summary,
    /// Present when [`RunOutcome::keeps_model`]: the model of the last completed epoch.
    pub trained: Option<TrainedModel>,
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
    backbone: Backbone,
    /// Frozen mode: the backbone with its BatchNorms folded, for feature extraction.
    inference_backbone: Option<Backbone>,
    /// Always on the autodiff device.
    head: Head,
    optimizer: crate::optim::GraftAdamW,
    schedule: OneCycle,
    steps_per_epoch: usize,
    global_step: usize,
    pending: VecDeque<TrainEvent>,
    cancel: CancelToken,
    state: State,
    outcome: Option<RunOutcome>,
    train_cache: Vec<Tensor<2>>,
    val_cache: Option<Tensor<2>>,
    epoch: EpochAccum,
    history: Vec<EpochMetrics>,
    snapshot: Option<Snapshot>,
    started: Instant,
    images_processed: usize,
    step_seconds: Vec<f32>,
}

impl Trainer {
    /// Prepares a run: validates the data and settings, splits the data and places the model on
    /// `device` (a plain, non-autodiff device). The first events (`Loaded`, warnings, the first
    /// `Phase`) are queued. `model` is usually [`ImageClassifier::from_pretrained`] (new head) or
    /// a previous export (further training).
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

        let classes = dataset.classes.len();
        let (train_idx, val_idx) = stratified_split(&dataset.labels(), classes, cfg.val_fraction, cfg.seed);
        let steps_per_epoch = train_idx.len().div_ceil(cfg.batch_size);
        let backbone = match cfg.mode {
            Mode::Frozen => model.backbone.valid().to_device(&device),
            Mode::Discriminative => model.backbone.fork(&autodiff).train(),
        };
        let inference_backbone = (cfg.mode == Mode::Frozen).then(|| backbone.folded());
        let head = model.head.fork(&autodiff).train();
        let optimizer = crate::optim::adamw(cfg.weight_decay);

        let count = |idx: &[usize]| {
            let mut c = vec![0; classes];
            idx.iter().for_each(|&i| c[dataset.items[i].label] += 1);
            c
        };
        let (train_counts, val_counts) = (count(&train_idx), count(&val_idx));
        let mut pending = VecDeque::new();
        pending.push_back(TrainEvent::Loaded {
            classes: dataset.classes.clone(),
            train_counts: train_counts.clone(),
            val_counts: val_counts.clone(),
            file_errors: dataset.errors.clone(),
            mode: cfg.mode,
            epochs: cfg.epochs,
            steps_per_epoch,
        });
        for message in split_warnings(&dataset.classes, &train_counts, &val_counts, cfg.val_fraction) {
            pending.push_back(TrainEvent::Warning { message });
        }
        let first_phase = match cfg.mode {
            Mode::Frozen => PhaseKind::ExtractingFeatures,
            Mode::Discriminative if cfg.warmup_epochs > 0 => PhaseKind::WarmUp,
            Mode::Discriminative => PhaseKind::FineTuning,
        };
        pending.push_back(TrainEvent::Phase { phase: first_phase });
        let state = match cfg.mode {
            Mode::Frozen => State::Extract { view: 0, cursor: 0, pending: Vec::new() },
            Mode::Discriminative => State::Train { epoch: 0, order: Vec::new(), cursor: 0 },
        };
        Ok(Self {
            preprocess: cfg.preprocess(),
            schedule: OneCycle::new(steps_per_epoch * cfg.epochs),
            cfg,
            device,
            autodiff,
            dataset,
            train_idx,
            val_idx,
            backbone,
            inference_backbone,
            head,
            optimizer,
            steps_per_epoch,
            global_step: 0,
            pending,
            cancel: CancelToken::default(),
            state,
            outcome: None,
            train_cache: Vec::new(),
            val_cache: None,
            epoch: EpochAccum::default(),
            history: Vec::new(),
            snapshot: None,
            started: Instant::now(),
            images_processed: 0,
            step_seconds: Vec::new(),
        })
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The run stops (after its current step) when `cancel` is cancelled: the caller's own Stop
    /// (a job's, a Compare's) drives this run directly, with nothing to relay between steps.
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn classes(&self) -> &[String] {
        &self.dataset.classes
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// How the run ended; `None` while it is still going.
    pub fn outcome(&self) -> Option<&RunOutcome> {
        self.outcome.as_ref()
    }

    /// Metrics so far; the evaluation is that of the last completed epoch.
    pub fn summary(&self) -> Summary {
        let seconds = self.started.elapsed().as_secs_f32();
        Summary {
            epochs: self.history.clone(),
            evaluation: self.snapshot.as_ref().and_then(|s| s.evaluation.clone()),
            seconds,
            images_per_sec: ratio(self.images_processed, seconds),
        }
    }

    /// The next event of the run, doing one step of work when none is waiting; `None` after the
    /// event that ends the run.
    pub async fn next_event(&mut self) -> Option<TrainEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.outcome.is_some() {
                return None;
            }
            self.step().await;
        }
    }

    /// The model of the last completed epoch with its manifest (metrics so far), while the run
    /// goes on: what a front end saves so that a reload or crash loses at most one epoch.
    pub fn checkpoint(&self) -> Option<TrainedModel> {
        let snapshot = self.snapshot.as_ref()?;
        Some(TrainedModel { model: snapshot.model.clone(), manifest: self.manifest(&snapshot.model) })
    }

    fn manifest(&self, model: &ImageClassifier) -> Manifest {
        Manifest::new(
            model.arch(),
            self.dataset.classes.clone(),
            model.head.kind.clone(),
            &self.preprocess,
            Some(self.cfg.clone()),
            Some(self.summary()),
        )
    }

    /// Ends the run (as cancelled, if it was still going) and hands over what it leaves: the
    /// outcome, the summary and — for a finished run or a stopped one with a completed epoch —
    /// the model of the last completed epoch with its manifest, built from this run's own
    /// settings, head and preprocessing.
    pub fn finish(mut self) -> RunResult {
        if self.outcome.is_none() {
            self.end(RunOutcome::Cancelled { completed_epochs: self.history.len() });
        }
        let outcome = self.outcome.clone().unwrap_or(RunOutcome::Cancelled { completed_epochs: 0 });
        let summary = self.summary();
        // The manifest carries the summary's evaluation, which reads the snapshot: build it
        // before the snapshot is taken.
        let manifest = self.snapshot.as_ref().map(|s| self.manifest(&s.model));
        let trained = match (outcome.keeps_model(), self.snapshot.take(), manifest) {
            (true, Some(snapshot), Some(manifest)) => Some(TrainedModel { model: snapshot.model, manifest }),
            _ => None,
        };
        RunResult { outcome, summary, trained }
    }

    /// One batch of work; queues the events it produces.
    async fn step(&mut self) {
        if self.cancel.is_cancelled() {
            self.end(RunOutcome::Cancelled { completed_epochs: self.history.len() });
            return;
        }
        let result = match std::mem::replace(&mut self.state, State::Over) {
            State::Extract { view, cursor, pending } => self.extract_step(view, cursor, pending).await,
            State::Train { epoch, order, cursor } => self.train_step(epoch, order, cursor).await,
            State::Validate { epoch, cursor, acc } => self.validate_step(epoch, cursor, acc).await,
            State::Over => Ok(State::Over),
        };
        match result {
            Ok(State::Over) => {
                if let Some(eval) = self.snapshot.as_ref().and_then(|s| s.evaluation.clone()) {
                    self.emit(TrainEvent::Evaluation(eval));
                }
                self.end(RunOutcome::Done);
            }
            Ok(next) => self.state = next,
            Err(failure) => self.end(failure.outcome()),
        }
    }

    /// Records the outcome and queues the event that ends the stream.
    fn end(&mut self, outcome: RunOutcome) {
        if self.outcome.is_some() {
            return;
        }
        self.state = State::Over;
        let event = match &outcome {
            RunOutcome::Done => TrainEvent::Done(self.summary()),
            RunOutcome::Cancelled { completed_epochs } => TrainEvent::Cancelled { completed_epochs: *completed_epochs },
            RunOutcome::Failed { reason, message } => TrainEvent::Failed { reason: *reason, message: message.clone() },
        };
        self.pending.push_back(event);
        self.outcome = Some(outcome);
    }

    fn emit(&mut self, event: TrainEvent) {
        self.pending.push_back(event);
    }

    /// The model in its current state (a validation copy: no autodiff, no dropout).
    fn current_model(&self) -> ImageClassifier {
        ImageClassifier { backbone: self.backbone.valid(), head: self.head.valid() }
    }

    /// Keeps the model of a completed epoch (tensors are shared, not copied).
    fn take_snapshot(&mut self, evaluation: Option<Evaluation>) {
        self.snapshot = Some(Snapshot { model: self.current_model(), evaluation });
    }

    fn views(&self) -> usize {
        self.cfg.cached_views()
    }

    /// Preprocessed CHW floats of `items`: augmented (`Some(view)` seeds the draw) or eval.
    fn prepare(&self, items: &[usize], augment_view: Option<usize>) -> Result<Vec<Vec<f32>>, Failure> {
        items
            .iter()
            .map(|&i| {
                let item = &self.dataset.items[i];
                let image = item.image.rgb().map_err(|e| Failure::data(format!("{}: {e}", item.name)))?;
                Ok(match (augment_view, &self.cfg.augment) {
                    (Some(view), Some(aug)) => {
                        let salt = (view as u64) << 32 | i as u64;
                        let mut rng = SeededRng::new(self.cfg.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        self.preprocess.train(&image, aug, &mut rng)
                    }
                    _ => self.preprocess.eval(&image),
                })
            })
            .collect()
    }
}

/// `count / seconds` as a rate, 0 for an empty interval.
#[allow(clippy::cast_precision_loss)] // image counts are far below 2^24
pub(crate) fn ratio(count: usize, seconds: f32) -> f32 {
    if seconds > 0.0 {
        count as f32 / seconds
    } else {
        0.0
    }
}

/// What the split means for measuring accuracy, in words.
fn split_warnings(classes: &[String], train: &[usize], val: &[usize], val_fraction: f32) -> Vec<String> {
    let mut out = Vec::new();
    if val.iter().all(|&n| n == 0) {
        out.push(if val_fraction > 0.0 {
            "no validation images: every class is too small to hold one back (add images), so accuracy is measured on training data only".into()
        } else {
            "validation split is 0: accuracy is measured on training data only".into()
        });
        return out;
    }
    for (i, name) in classes.iter().enumerate() {
        if val[i] == 0 {
            out.push(format!(
                "class `{name}` has no validation images (only {} image{}): its accuracy cannot be measured — add more",
                train[i],
                if train[i] == 1 { "" } else { "s" }
            ));
        }
    }
    out
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
    if model.arch() != cfg.backbone {
        return err(format!("the model is {} but the settings train {}", model.arch().title(), cfg.backbone.title()));
    }
    if model.head.num_classes() != dataset.classes.len() {
        return err(format!(
            "the head has {} outputs but the data has {} classes",
            model.head.num_classes(),
            dataset.classes.len()
        ));
    }
    if let HeadKind::KeepImagenet { rows } = &model.head.kind {
        if rows.len() != dataset.classes.len() {
            return err("keep-ImageNet head needs one ImageNet class per user class".into());
        }
    }
    if dataset.preprocess != cfg.preprocess() {
        return err(format!(
            "the images were prepared for a {}px input but the run uses {}px",
            dataset.preprocess.input_size, cfg.input_size
        ));
    }
    Ok(())
}
