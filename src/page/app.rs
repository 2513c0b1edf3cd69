//! Page layout and start-up: the engine worker is started, persistent storage is requested.

use leptos::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::page::client::EngineLink;
use crate::page::components::{
    BenchPanel, ClassesPanel, EvaluationPanel, Header, HowItWorks, LabPanel, MetricsJson, PredictPanel, ProjectBar,
    SettingsPanel, TrainingPanel,
};
use crate::page::state::{AppState, Boot};
use crate::page::tab::TabOwnership;

/// Asks the browser to keep this site's storage (the saved project) even when space runs low.
async fn request_persistence(state: AppState) {
    let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) else { return };
    let Ok(promise) = storage.persist() else { return };
    if let Ok(granted) = JsFuture::from(promise).await {
        state.storage.update(|s| s.persisted = granted.as_bool());
    }
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    let engine = EngineLink::start(state);
    state.engine.set_value(Some(engine));
    leptos::task::spawn_local(request_persistence(state));
    let ready = move || state.usable();
    // The offline cache is set up once, after the engine is ready (never during the first load).
    let offline_started = StoredValue::new(false);
    Effect::new(move |_| {
        if ready() && !offline_started.get_value() {
            offline_started.set_value(true);
            leptos::task::spawn_local(crate::page::offline::register(state));
        }
    });

    view! {
        <Header/>
        <main>
            <Show when=ready fallback=move || view! {
                <TabPanel/>
                <Show when=move || matches!(state.tab.get(), TabOwnership::Asking | TabOwnership::Owner)>
                    <BootPanel/>
                </Show>
            }>
                <ProjectBar/>
                <div class="layout">
                    <ClassesPanel/>
                    <SettingsPanel/>
                    <TrainingPanel/>
                    <EvaluationPanel/>
                    <PredictPanel/>
                    <LabPanel/>
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

/// This tab does not own the project: why, and "use it here".
#[component]
fn TabPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let text = move || match state.tab.get() {
        TabOwnership::Elsewhere => Some((
            "elsewhere",
            "graft is open in another tab",
            "Your project is saved in this browser and another tab is working on it. Only one tab \
             works on it at a time, so that neither overwrites what the other saved."
                .to_string(),
        )),
        TabOwnership::Lost { why } => Some((
            "lost",
            "graft moved to another tab",
            format!(
                "Another tab took this project over ({why}), so this tab stopped: anything it was \
                 training or saving has ended here. The other tab has everything saved before."
            ),
        )),
        TabOwnership::Asking | TabOwnership::Owner => None,
    };
    move || {
        text().map(|(kind, title, body)| {
            view! {
                <section class="panel tab-elsewhere" data-testid="tab-elsewhere" data-kind=kind>
                    <h2>{title}</h2>
                    <p>{body}</p>
                    <button data-testid="use-here" on:click=move |_| crate::page::tab::take_over()>
                        "Use it here"
                    </button>
                    <p class="hint">"The other tab then stops; this one reloads and opens the saved project."</p>
                </section>
            }
        })
    }
}

/// Download progress and start-up messages until the engine is ready.
#[component]
fn BootPanel() -> impl IntoView {
    let state = expect_context::<AppState>();

    let measuring = move || state.choice.measuring.get();
    let text = move || match state.boot.get() {
        _ if measuring().is_some() => format!(
            "measuring which engine trains fastest in this browser (first start only): {}…",
            measuring().unwrap_or_default()
        ),
        Boot::Starting(s) => s,
        Boot::Loading { loaded, total: Some(t) } => {
            format!("downloading the pretrained MobileNetV2: {:.1} / {:.1} MB", loaded as f64 / 1e6, t as f64 / 1e6)
        }
        Boot::Loading { loaded, total: None } => {
            format!("downloading the pretrained MobileNetV2: {:.1} MB", loaded as f64 / 1e6)
        }
        Boot::Restoring => "restoring your saved project…".into(),
        Boot::Ready => "ready".into(),
        Boot::Failed(e) => format!("start-up failed: {e}"),
    };
    let fraction = move || match state.boot.get() {
        Boot::Loading { loaded, total: Some(t) } => loaded as f64 / t.max(1) as f64,
        Boot::Restoring | Boot::Ready => 1.0,
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
