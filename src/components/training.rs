//! Train / Stop, progress, live loss and accuracy curves.

use leptos::prelude::*;

use super::charts::{LineChart, Series};
use crate::run::{start_training, stop_training};
use crate::state::{AppState, RunStatus};

#[component]
pub fn TrainingPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let run = state.run;
    let running = move || run.status.get() == RunStatus::Running;
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
            <div class="controls">
                <button class="primary" data-testid="train-button" disabled=running on:click=move |_| start_training(state)>"Train"</button>
                <button data-testid="stop-button" disabled=move || !running() on:click=move |_| stop_training(state)>"Stop"</button>
                <span class="status" data-testid="train-status">{move || run.status.get().label()}</span>
                <span class="phase">{phase}</span>
            </div>
            <progress data-testid="train-progress" max="1" prop:value=move || run.progress.get().fraction></progress>
            <p class="progress-text">{move || run.progress.get().text}</p>
            {move || run.error.get().map(|e| view! { <p class="error" data-testid="train-error">{e}</p> })}
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
