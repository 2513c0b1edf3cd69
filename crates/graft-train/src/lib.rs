//! The trainer: frozen-backbone and discriminative fine-tuning behind one async event stream
//! that ends in the run's [`RunOutcome`], plus metrics, export/import of trained models and
//! prediction; and the web app's engine choice: a check of a compute device's answers (one real
//! training step, [`probe_step`], compared with [`compare_readings`]) and a short per-mode speed
//! measurement ([`measure_speed`]). UI-free: the web app and the CLI both pull a [`Trainer`]'s
//! [`TrainEvent`]s.

mod batch;
mod bench;
mod config;
mod events;
mod export;
mod loss;
mod metrics;
pub mod onnx;
mod optim;
mod predict;
mod probe;
mod schedule;
mod speed;
mod trainer;

pub use batch::{index_tensor, read_floats};
pub use bench::{bench, forward_gflop_224, train_gflop_224, BenchOptions, BenchReport, BenchRow, OpGroupRow};
pub use config::{Mode, TrainConfig};
pub use events::{
    CancelToken, EpochMetrics, Evaluation, Failure, FailureReason, PhaseKind, RunOutcome, StepProgress, Summary,
    TrainEvent, ValItem,
};
pub use export::{
    export_model, load_exported, ExportBundle, ExportError, LoadError, Manifest, LABELS_FILE, MANIFEST_FILE,
    WEIGHTS_FILE,
};
pub use loss::{argmax, cross_entropy, smoothed_targets};
pub use metrics::confusion_evaluation;
pub use optim::{adamw, GraftAdamW};
pub use predict::{predict, Prediction};
pub use probe::{
    compare_readings, probe_step, synthetic_pixels, ProbeComparison, ProbeQuantity, ProbeReading, QuantityDiff,
    Tolerance, PROBE_BATCH, PROBE_INPUT, PROBE_TOLERANCE,
};
pub use schedule::OneCycle;
pub use speed::{measure_speed, ModeSpeed, SpeedReading, CUT_BEHIND, SPEED_BATCH, SPEED_FROZEN_BATCH, SPEED_INPUT};
pub use trainer::{step_every_layer, RunResult, TrainError, TrainedModel, Trainer};

/// Held by the tests that count GPU launches: the launch observer sees every launch in the
/// process, and the test harness runs tests side by side, so two such tests at once would count
/// each other's kernels.
#[cfg(test)]
pub(crate) fn counting_launches_alone() -> std::sync::MutexGuard<'static, ()> {
    static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    COUNTING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
