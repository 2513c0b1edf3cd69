//! Validation accuracy, confusion matrix and per-class accuracy of the latest run.

use leptos::prelude::*;

use crate::page::state::AppState;

#[component]
pub fn EvaluationPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let run = state.run;
    view! {
        <section class="panel evaluation">
            <h2>"4 · Evaluation"</h2>
            {move || match run.evaluation.get() {
                None => view! { <p class="hint">"Validation results appear after each epoch."</p> }.into_any(),
                Some(e) => {
                    let classes = run.classes.get();
                    let header = classes.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view();
                    let rows = e.confusion.iter().enumerate().map(|(i, row)| {
                        let total: u32 = row.iter().sum();
                        let cells = row.iter().enumerate().map(|(j, n)| {
                            let share = if total > 0 { *n as f32 / total as f32 } else { 0.0 };
                            view! { <td class:diag=i == j style:background=format!("rgba(24,100,171,{:.2})", share * 0.6)>{*n}</td> }
                        }).collect_view();
                        let acc = e.per_class_accuracy[i].map(|a| format!("{:.0}%", a * 100.0)).unwrap_or("–".into());
                        view! { <tr><th>{classes.get(i).cloned().unwrap_or_default()}</th>{cells}<td class="acc">{acc}</td></tr> }
                    }).collect_view();
                    view! {
                        <p class="big" data-testid="val-accuracy">{format!("validation accuracy {:.1}%", e.accuracy * 100.0)}</p>
                        <table class="confusion" data-testid="confusion-matrix">
                            <thead><tr><th>"true ↓ / predicted →"</th>{header}<th>"per-class"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    }.into_any()
                }
            }}
        </section>
    }
}
