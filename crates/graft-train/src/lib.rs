//! The trainer: frozen-backbone and discriminative fine-tuning behind one async event stream,
//! plus metrics, export/import of trained models and prediction. UI-free: the web app and the
//! CLI both drive a [`Trainer`] and render its [`TrainEvent`]s.

mod batch;
mod bench;
mod config;
mod events;
mod export;
mod loss;
mod metrics;
mod predict;
mod schedule;
mod trainer;
mod zip;

pub use bench::{bench, BenchReport, BenchRow};
pub use config::{Mode, TrainConfig};
pub use events::{CancelToken, EpochMetrics, Evaluation, PhaseKind, StepProgress, Summary, TrainEvent};
pub use export::{export_model, load_exported, ExportBundle, LoadError, Manifest};
pub use metrics::confusion_evaluation;
pub use predict::{predict, Prediction};
pub use schedule::OneCycle;
pub use trainer::{TrainError, Trainer};
pub use zip::stored_zip;
