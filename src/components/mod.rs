//! Page sections. Each reads the shared [`AppState`](crate::state::AppState) signals.

mod bench;
mod charts;
mod classes;
mod evaluation;
mod header;
mod how;
mod metrics_json;
mod predict;
mod settings;
mod training;

pub use bench::BenchPanel;
pub use classes::ClassesPanel;
pub use evaluation::EvaluationPanel;
pub use header::Header;
pub use how::HowItWorks;
pub use metrics_json::MetricsJson;
pub use predict::PredictPanel;
pub use settings::SettingsPanel;
pub use training::TrainingPanel;
