//! Page layout and start-up.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::components::{
    BenchPanel, ClassesPanel, EvaluationPanel, Header, HowItWorks, MetricsJson, PredictPanel, SettingsPanel,
    TrainingPanel,
};
use crate::state::{AppState, Boot};

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    spawn_local(crate::boot::boot(state));
    let ready = move || state.boot.with(|b| *b == Boot::Ready);

    view! {
        <Header/>
        <main>
            <Show when=ready fallback=move || view! { <BootPanel/> }>
                <div class="layout">
                    <ClassesPanel/>
                    <SettingsPanel/>
                    <TrainingPanel/>
                    <EvaluationPanel/>
                    <PredictPanel/>
                </div>
            </Show>
            <HowItWorks/>
            <Show when=ready>
                <BenchPanel/>
            </Show>
        </main>
        <MetricsJson/>
    }
}

/// Download progress and start-up messages until the backbone is ready.
#[component]
fn BootPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let text = move || match state.boot.get() {
        Boot::Starting(s) => s,
        Boot::Loading { loaded, total: Some(t) } => {
            format!("downloading the pretrained MobileNetV2: {:.1} / {:.1} MB", loaded as f64 / 1e6, t as f64 / 1e6)
        }
        Boot::Loading { loaded, total: None } => {
            format!("downloading the pretrained MobileNetV2: {:.1} MB", loaded as f64 / 1e6)
        }
        Boot::Probing => "measuring WebGPU and CPU speed on this machine…".into(),
        Boot::Ready => "ready".into(),
        Boot::Failed(e) => format!("start-up failed: {e}"),
    };
    let fraction = move || match state.boot.get() {
        Boot::Loading { loaded, total: Some(t) } => loaded as f64 / t.max(1) as f64,
        Boot::Probing | Boot::Ready => 1.0,
        _ => 0.0,
    };
    let failed = move || matches!(state.boot.get(), Boot::Failed(_));
    view! {
        <section class="panel boot" data-testid="boot">
            <h2>"Loading the pretrained backbone"</h2>
            <progress data-testid="model-progress" max="1" prop:value=fraction></progress>
            <p class:error=failed>{text}</p>
        </section>
    }
}
