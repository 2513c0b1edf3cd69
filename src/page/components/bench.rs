//! Benchmark page: the engine's `bench` (same code as `graft bench`) on the backend in use, in
//! the worker, plus the ingest rate (pictures decoded and prepared per second).

use leptos::prelude::*;

use graft::protocol::Command;

use crate::page::state::AppState;

#[component]
pub fn BenchPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let batches = RwSignal::new("16".to_string());
    let iterations = RwSignal::new(2usize);
    let run = move |_| {
        let sizes: Vec<usize> = batches.get_untracked().split(',').filter_map(|b| b.trim().parse().ok()).collect();
        state.bench_running.set(true);
        state.bench.set(None);
        state.send(&Command::Bench { batches: sizes, iterations: iterations.get_untracked().max(1) });
    };
    view! {
        <Show when=move || state.show_bench.get()>
            <section class="panel bench" data-testid="bench">
                <h2>"Benchmark " <button class="link" data-testid="bench-close" on:click=move |_| state.show_bench.set(false)>"close"</button></h2>
                <p class="hint">"Synthetic 224×224 batches on the backend in use: backbone features (frozen mode pays this once per image), a head step on cached features (each later frozen epoch), a full fine-tune step (every discriminative step), and ingest: synthetic 640×480 photos decoded and prepared per second. On WebGPU, dispatches count the kernels each batch launches."</p>
                <div class="controls">
                    <label>"batch sizes " <input data-testid="bench-batches" prop:value=move || batches.get() on:change=move |ev| batches.set(event_target_value(&ev))/></label>
                    <label>"timed batches " <input type="number" data-testid="bench-iters" prop:value=move || iterations.get().to_string()
                        on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse() { iterations.set(v) } }/></label>
                    <button class="primary" data-testid="bench-run" disabled=move || state.bench_running.get() on:click=run>"Run"</button>
                    <span>{move || if state.bench_running.get() { "running…" } else { "" }}</span>
                </div>
                <KernelChecks/>
                {move || state.bench.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                    Ok((backend, r)) => view! {
                        <table class="confusion" data-testid="bench-table">
                            <thead><tr><th>"backend"</th><th>"what"</th><th>"batch"</th><th>"img/s"</th><th>"ms/batch"</th><th>"GFLOP/s"</th><th>"dispatches"</th><th>"by op group (launches)"</th><th>"GPU pool reserved"</th></tr></thead>
                            <tbody>{r.rows.into_iter().map(|row| {
                                let memory = row.device_bytes_reserved.map(|b| format!("{:.0} MiB", b as f64 / 1048576.0)).unwrap_or("–".into());
                                let gflops = row.gflops_per_sec.map(|g| format!("{g:.1}")).unwrap_or("–".into());
                                // Kernel launches per batch (GPU only), and where one profiled batch spent them.
                                let dispatches = row.dispatches.map(|d| format!("{d:.0}")).unwrap_or("–".into());
                                let data_dispatches = row.dispatches.map(|d| d.to_string()).unwrap_or_default();
                                let groups = row.op_groups.iter().map(|g| format!("{} {}", g.group, g.launches)).collect::<Vec<_>>().join(" · ");
                                view! {
                                    <tr data-testid="bench-row" data-what=row.what.clone() data-batch=row.batch.to_string() data-ips=row.images_per_sec.to_string() data-dispatches=data_dispatches>
                                        <td>{backend.clone()}</td><td>{row.what.clone()}</td><td>{row.batch}</td>
                                        <td>{format!("{:.2}", row.images_per_sec)}</td><td>{format!("{:.0}", row.ms_per_batch)}</td><td>{gflops}</td><td>{dispatches}</td><td class="op-groups">{groups}</td><td>{memory}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </section>
        </Show>
    }
}

/// "Check kernels": graft's GPU kernels each against its definition on the WebGPU device in use,
/// forward and gradients (the start-up check runs one whole training step; this names the
/// kernel when that step answered wrong).
#[component]
fn KernelChecks() -> impl IntoView {
    let state = expect_context::<AppState>();
    let running = RwSignal::new(false);
    Effect::new(move |_| {
        if state.kernel_checks.get().is_some() {
            running.set(false);
        }
    });
    let run = move |_| {
        running.set(true);
        state.kernel_checks.set(None);
        state.send(&Command::CheckKernels);
    };
    view! {
        <div class="controls">
            <button data-testid="kernel-check-run" disabled=move || running.get() on:click=run>"Check GPU kernels"</button>
            <span class="hint">"graft's WebGPU kernels, each against its definition on the CPU (forward and gradients)"</span>
            <span>{move || if running.get() { "checking…" } else { "" }}</span>
        </div>
        {move || state.kernel_checks.get().map(|r| match r {
            Err(e) => view! { <p class="error" data-testid="kernel-check-error">{e}</p> }.into_any(),
            Ok(checks) => {
                let failed = checks.iter().filter(|c| !c.passed()).count();
                let summary = format!("{} of {} checks passed", checks.len() - failed, checks.len());
                view! {
                    <p data-testid="kernel-check-summary" data-failed=failed.to_string() data-total=checks.len().to_string()>{summary}</p>
                    <table class="confusion kernel-checks">
                        <thead><tr><th>"kernel"</th><th>"case"</th><th>"quantity"</th><th>"difference (of scale)"</th><th>"allowed"</th></tr></thead>
                        <tbody>{checks.into_iter().map(|c| view! {
                            <tr data-testid="kernel-check-row" data-passed=c.passed().to_string() class:bad=!c.passed()>
                                <td>{c.kernel.clone()}</td><td>{c.case.clone()}</td><td>{c.quantity.clone()}</td>
                                <td>{format!("{:.1e}", c.diff)}</td><td>{format!("{:.0e}", c.allowed)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }
        })}
    }
}
