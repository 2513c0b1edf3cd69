//! A hidden JSON mirror of the latest run, for automated tests and curious users.

use leptos::prelude::*;
use serde_json::json;

use crate::state::AppState;

#[component]
pub fn MetricsJson() -> impl IntoView {
    let state = expect_context::<AppState>();
    let run = state.run;
    let text = move || {
        json!({
            "status": run.status.get().label(),
            "mode": run.mode.get().label(),
            "backend": run.backend.get(),
            "phases": run.phases.get(),
            "epochs": run.epochs.get(),
            "steps": run.steps.get(),
            "evaluation": run.evaluation.get(),
            "images_per_sec": run.images_per_sec.get(),
            "extract_images_per_sec": run.extract_images_per_sec.get(),
        })
        .to_string()
    };
    view! { <pre hidden data-testid="metrics-json">{text}</pre> }
}
