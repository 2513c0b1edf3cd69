//! The typed messages a training run emits, in order: `Loaded`, then `Phase`/`Extract`/`Step`/
//! `Validate`/`Epoch` as work proceeds, `Evaluation` at the end, and last of all exactly one of
//! `Done`, `Cancelled`, `Failed` — the run's [`RunOutcome`]. `Warning` may come at any time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use graft_data::FileError;
use serde::{Deserialize, Serialize};

use crate::config::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Frozen mode: running the backbone once per image (and augmented view).
    ExtractingFeatures,
    /// Frozen mode: training the head on cached features.
    TrainingHead,
    /// Discriminative mode: head-only epochs, backbone still locked.
    WarmUp,
    /// Discriminative mode: backbone and head learning at their own rates.
    FineTuning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    /// 1-based epoch.
    pub epoch: usize,
    pub epochs: usize,
    /// 1-based step within the epoch.
    pub step: usize,
    pub steps_per_epoch: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub lr: f64,
    pub images_per_sec: f32,
    pub eta_secs: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    pub seconds: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f32,
    pub accuracy: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
    pub per_class_accuracy: Vec<Option<f32>>,
    /// Every validation picture's outcome, in validation order (for interpretation).
    #[serde(default)]
    pub items: Vec<ValItem>,
}

/// One validation picture: what it is, what the model said, how sure it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValItem {
    pub name: String,
    /// Index of the picture in the run's dataset.
    pub index: usize,
    pub label: usize,
    pub predicted: usize,
    pub confidence: f32,
    pub true_probability: f32,
    pub loss: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub epochs: Vec<EpochMetrics>,
    pub evaluation: Option<Evaluation>,
    pub seconds: f32,
    /// Training images processed per second over the whole run (feature extraction included).
    pub images_per_sec: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrainEvent {
    Loaded {
        classes: Vec<String>,
        train_counts: Vec<usize>,
        val_counts: Vec<usize>,
        file_errors: Vec<FileError>,
        mode: Mode,
        epochs: usize,
        steps_per_epoch: usize,
    },
    Phase {
        phase: PhaseKind,
    },
    Extract {
        done: usize,
        total: usize,
        images_per_sec: f32,
    },
    Step(StepProgress),
    /// Validation batches of an epoch (discriminative mode runs the backbone on them).
    Validate {
        epoch: usize,
        done: usize,
        total: usize,
    },
    Epoch(EpochMetrics),
    Evaluation(Evaluation),
    Warning {
        message: String,
    },
    Done(Summary),
    /// Stopped by the user; `completed_epochs` full epochs were trained and validated.
    Cancelled {
        completed_epochs: usize,
    },
    Failed {
        reason: FailureReason,
        message: String,
    },
}

impl TrainEvent {
    /// The outcome this event announces, for the three events that end a run.
    pub fn outcome(&self) -> Option<RunOutcome> {
        match self {
            TrainEvent::Done(_) => Some(RunOutcome::Done),
            TrainEvent::Cancelled { completed_epochs } => {
                Some(RunOutcome::Cancelled { completed_epochs: *completed_epochs })
            }
            TrainEvent::Failed { reason, message } => {
                Some(RunOutcome::Failed { reason: *reason, message: message.clone() })
            }
            _ => None,
        }
    }
}

/// How a run ended: exactly one per run, and the last event of its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    Done,
    Cancelled { completed_epochs: usize },
    Failed { reason: FailureReason, message: String },
}

/// Why a run failed: what to do about it differs (lower the learning rate, switch device, fix a
/// picture, change the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The loss or a logit stopped being a number: the settings' fault, not the device's.
    Diverged,
    /// The compute device returned no result (a lost GPU, out of memory, a driver error).
    Device,
    /// A training picture could not be read.
    Data,
    /// The run could not start: data, settings and model do not fit together.
    Setup,
}

/// A failed run's reason and message (what a trainer step returns when it cannot go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }

    pub fn device(message: impl Into<String>) -> Self {
        Self::new(FailureReason::Device, message)
    }

    pub fn data(message: impl Into<String>) -> Self {
        Self::new(FailureReason::Data, message)
    }

    pub fn outcome(self) -> RunOutcome {
        RunOutcome::Failed { reason: self.reason, message: self.message }
    }
}

impl RunOutcome {
    /// Whether the run leaves a model worth keeping: a finished run, or a stopped one that
    /// completed at least one epoch (its model is the one of the last completed epoch).
    pub fn keeps_model(&self) -> bool {
        match self {
            RunOutcome::Done => true,
            RunOutcome::Cancelled { completed_epochs } => *completed_epochs > 0,
            RunOutcome::Failed { .. } => false,
        }
    }

    /// One line for people: what happened and what was kept.
    pub fn describe(&self, epochs: usize) -> String {
        match self {
            RunOutcome::Done => format!("finished all {epochs} epochs"),
            RunOutcome::Cancelled { completed_epochs: 0 } => {
                "stopped before the first epoch ended: no model kept".into()
            }
            RunOutcome::Cancelled { completed_epochs } => format!(
                "stopped after {completed_epochs} of {epochs} epochs: kept the model of epoch {completed_epochs}"
            ),
            RunOutcome::Failed { message, .. } => format!("failed: {message}"),
        }
    }
}

/// Shared stop flag: the trainer checks it between steps.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
