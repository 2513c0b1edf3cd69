//! The trainer: frozen-backbone and discriminative fine-tuning behind one async event stream
//! that ends in the run's [`RunOutcome`], plus metrics, export/import of trained models and
//! prediction. UI-free: the web app and the CLI both pull a [`Trainer`]'s [`TrainEvent`]s.

mod archive;
mod batch;
mod bench;
mod config;
mod events;
mod export;
mod loss;
mod metrics;
mod optim;
mod predict;
mod schedule;
mod trainer;

pub use archive::{read_zip, write_zip, ZipError, MAX_UNPACKED_BYTES};
pub use batch::{index_tensor, read_floats};
pub use bench::{bench, BenchOptions, BenchReport, BenchRow, OpGroupRow, FORWARD_GFLOP_224, TRAIN_GFLOP_224};
pub use config::{Mode, TrainConfig};
pub use events::{
    CancelToken, EpochMetrics, Evaluation, PhaseKind, RunOutcome, StepProgress, Summary, TrainEvent, ValItem,
};
pub use export::{export_model, load_exported, ExportBundle, ExportError, LoadError, Manifest};
pub use loss::{argmax, cross_entropy, smoothed_targets};
pub use metrics::confusion_evaluation;
pub use optim::{adamw, GraftAdamW};
pub use predict::{predict, Prediction};
pub use schedule::OneCycle;
pub use trainer::{RunResult, TrainError, TrainedModel, Trainer};
