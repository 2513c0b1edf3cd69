//! The typed messages a training run emits, in order: `Loaded`, then `Phase`/`Extract`/`Step`/
//! `Epoch` as work proceeds, `Evaluation` at the end, and one of `Done`, `Cancelled`, `Failed`.
//! `Warning` may come at any time.

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
    Epoch(EpochMetrics),
    Evaluation(Evaluation),
    Warning {
        message: String,
    },
    Done(Summary),
    Cancelled,
    Failed {
        message: String,
    },
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
