//! Page sections. Each reads the shared [`AppState`](crate::page::state::AppState) signals and
//! sends commands to the engine worker.

mod bench;
mod charts;
mod classes;
mod evaluation;
mod header;
mod how;
mod lab;
mod metrics_json;
mod predict;
mod project;
mod settings;
mod training;
mod webcam;

pub use bench::BenchPanel;
pub use classes::ClassesPanel;
pub use evaluation::EvaluationPanel;
pub use header::Header;
pub use how::HowItWorks;
pub use lab::LabPanel;
pub use metrics_json::MetricsJson;
pub use predict::PredictPanel;
pub use project::ProjectBar;
pub use settings::SettingsPanel;
pub use training::TrainingPanel;
