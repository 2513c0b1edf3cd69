//! A hidden JSON mirror of the latest run and the engine's state, for automated tests and
//! curious users.

use leptos::prelude::*;
use serde_json::json;

use crate::page::state::AppState;

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
            "outcome": run.outcome.get(),
            "error": run.error.get(),
            "model": state.model.get(),
            "wasm_memory": state.wasm_memory.get(),
            "engine_restarts": state.engine_restarts.get(),
            "class_counts": state.classes.get().iter().map(|c| c.count.get()).collect::<Vec<_>>(),
            "saved_images": state.storage.get().saved_images,
        })
        .to_string()
    };
    view! { <pre hidden data-testid="metrics-json">{text}</pre> }
}
