//! Train / Stop / Continue, progress, live loss and accuracy curves.

use leptos::prelude::*;

use graft::protocol::Command;

use super::charts::{LineChart, Series};
use crate::page::state::{AppState, Progress, RunStatus};

/// Starts a run: class names are checked here first so a problem shows next to its card.
fn start(state: AppState, resume: bool) {
    let run = state.run;
    let cards = state.classes.get_untracked();
    let names: Vec<String> = cards.iter().map(|c| c.name.get_untracked()).collect();
    for card in &cards {
        card.name_error.set(None);
    }
    if let Err(e) = graft_data::check_class_names(&names) {
        let key = |n: &str| n.trim().to_lowercase();
        let index = names
            .iter()
            .enumerate()
            .position(|(i, n)| key(n).is_empty() || names[..i].iter().any(|other| key(other) == key(n)));
        if let Some(card) = index.and_then(|i| cards.get(i)) {
            card.name_error.set(Some(e.to_string()));
        }
        run.error.set(Some(format!("fix the class names first: {e}")));
        return;
    }
    run.status.set(RunStatus::Running);
    run.mode.set(state.settings.mode.get_untracked());
    run.backend.set(state.compute.get_untracked().in_use);
    run.steps.set(Vec::new());
    run.phases.set(Vec::new());
    run.phase.set(None);
    run.extract_images_per_sec.set(None);
    run.epochs.set(Vec::new());
    run.evaluation.set(None);
    run.warnings.set(Vec::new());
    run.error.set(None);
    run.outcome.set(None);
    run.progress.set(Progress { fraction: 0.0, text: "starting".into() });
    state.engine.with_value(|e| match e {
        Some(engine) => engine.train(resume),
        None => state.send(&Command::Train { resume }),
    });
}

#[component]
pub fn TrainingPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let run = state.run;
    let running = move || run.status.get() == RunStatus::Running;
    let resumable = move || state.model.with(|m| m.as_ref().is_some_and(|m| m.resumable));
    let step_series = Signal::derive(move || {
        vec![Series {
            name: "train loss (per step)",
            color: "#d9480f",
            values: run.steps.get().iter().map(|s| s.loss).collect(),
        }]
    });
    let loss_series = Signal::derive(move || {
        let e = run.epochs.get();
        vec![
            Series { name: "train", color: "#d9480f", values: e.iter().map(|m| m.train_loss).collect() },
            Series { name: "validation", color: "#1864ab", values: e.iter().filter_map(|m| m.val_loss).collect() },
        ]
    });
    let acc_series = Signal::derive(move || {
        let e = run.epochs.get();
        vec![
            Series { name: "train", color: "#d9480f", values: e.iter().map(|m| m.train_accuracy).collect() },
            Series { name: "validation", color: "#1864ab", values: e.iter().filter_map(|m| m.val_accuracy).collect() },
        ]
    });
    let phase = move || {
        run.phase.get().map(|p| match p {
            graft_train::PhaseKind::ExtractingFeatures => {
                "computing backbone features once per image (frozen backbone)"
            }
            graft_train::PhaseKind::TrainingHead => "training the new head on cached features",
            graft_train::PhaseKind::WarmUp => "warm-up: only the head learns, the backbone is locked",
            graft_train::PhaseKind::FineTuning => "fine-tuning: backbone (slow lr) and head (full lr)",
        })
    };
    view! {
        <section class="panel training">
            <h2>"3 · Train"</h2>
            <p class="hint">"Training runs in a background worker: the page stays responsive, and the model of every finished epoch is saved in this browser."</p>
            <div class="controls">
                <button class="primary" data-testid="train-button" disabled=running on:click=move |_| start(state, false)>"Train"</button>
                <button data-testid="stop-button" disabled=move || !running() on:click=move |_| state.send(&Command::Stop)>"Stop"</button>
                <Show when=move || resumable() && !running()>
                    <button data-testid="continue-button" on:click=move |_| start(state, true)>"Continue training"</button>
                </Show>
                <span class="status" data-testid="train-status">{move || run.status.get().label()}</span>
                <span class="phase">{phase}</span>
            </div>
            <progress data-testid="train-progress" max="1" prop:value=move || run.progress.get().fraction></progress>
            <p class="progress-text">{move || run.progress.get().text}</p>
            {move || run.error.get().map(|e| view! { <p class="error" data-testid="train-error">{e}</p> })}
            {move || run.outcome.get().map(|o| view! { <p class="outcome" data-testid="train-outcome">{o}</p> })}
            {move || state.model.get().map(|m| view! {
                <p class="hint" data-testid="model-status">{format!("kept model: {} · classes {}", m.description, m.classes.join(", "))}
                    {m.val_accuracy.map(|a| format!(" · validation accuracy {:.1}%", a * 100.0))}</p>
            })}
            {move || state.lab.knowledge.get().and_then(|k| k.imagenet_agreement).map(|a| view! {
                <p class="hint" data-testid="imagenet-agreement">{format!(
                    "what the backbone still knows: {:.0}% of your pictures get the same ImageNet answer as before fine-tuning (see How it works for each layer)", a * 100.0
                )}</p>
            })}
            <ul class="warnings">
                {move || run.warnings.get().into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}
            </ul>
            <div class="charts">
                <LineChart title="loss per step" series=step_series/>
                <LineChart title="loss per epoch" series=loss_series/>
                <LineChart title="accuracy per epoch" series=acc_series unit_range=true/>
            </div>
        </section>
    }
}
