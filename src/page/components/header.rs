//! Title, compute backend status and the backend override.

use leptos::prelude::*;

use graft::protocol::{Backend, BackendChoice, Command};

use crate::page::client::{cpu_cores, cross_origin_isolated, EngineKind};
use crate::page::state::{AppState, Boot};

/// How many cores the CPU backend uses, and why not more.
fn threads_note(kind: Option<EngineKind>, threads: usize) -> String {
    let cores = cpu_cores();
    match kind {
        Some(EngineKind::Threads) => format!("CPU on {threads} threads"),
        _ if cores < 2 => "CPU on 1 thread".into(),
        _ if !cross_origin_isolated() => format!(
            "CPU on 1 of {cores} cores: this page is not cross-origin isolated (serve it with COOP/COEP headers for all cores)"
        ),
        _ => format!("CPU on 1 of {cores} cores (choose CPU for all of them)"),
    }
}

#[component]
pub fn Header() -> impl IntoView {
    let state = expect_context::<AppState>();
    let status = move || {
        let c = state.compute.get();
        let gpu = match (&c.adapter, &c.webgpu_error) {
            (Some(a), None) => {
                format!("WebGPU adapter: {a}{}", if c.fallback_adapter { " — software (fallback) adapter" } else { "" })
            }
            (_, Some(e)) => format!("No WebGPU: {e}. Using the CPU."),
            _ => "checking WebGPU…".into(),
        };
        let speed = |s: Option<f32>| s.map(|v| format!("{v:.2} img/s")).unwrap_or_else(|| "n/a".into());
        let chosen = match (state.boot.get() == Boot::Ready, c.in_use) {
            (true, Some(b)) => format!(
                " · backbone speed: WebGPU {}, CPU {} · using {} · {}",
                speed(c.webgpu_speed),
                speed(c.cpu_speed),
                b.label(),
                threads_note(state.engine_kind.get(), c.cpu_threads.max(1)),
            ),
            _ => String::new(),
        };
        format!("{gpu}{chosen}")
    };
    let on_select = move |ev| {
        let backend = match event_target_value(&ev).as_str() {
            "webgpu" => BackendChoice::Webgpu,
            "cpu" => BackendChoice::Cpu,
            _ => BackendChoice::Auto,
        };
        state.backend_choice.set(backend);
        state.engine.with_value(|e| match e {
            Some(engine) => engine.select_backend(backend),
            None => state.send(&Command::SelectBackend { backend }),
        });
    };
    let choice_value = move || match state.backend_choice.get() {
        BackendChoice::Auto => "auto",
        BackendChoice::Webgpu => "webgpu",
        BackendChoice::Cpu => "cpu",
    };
    // The multi-threaded engine has no WebGPU of its own: choosing WebGPU switches engines.
    let no_gpu = move || {
        state.engine_kind.get() != Some(EngineKind::Threads)
            && state.compute.with(|c| c.adapter.is_none() || c.webgpu_error.is_some())
    };
    let in_use = move || state.compute.with(|c| c.in_use.map(Backend::label).unwrap_or(""));
    let threads = move || state.compute.with(|c| c.cpu_threads.to_string());
    view! {
        <header>
            <div class="title">
                <h1>"graft"</h1>
                <span>"fine-tune a pretrained image model on your pictures — in this tab, on your GPU, no server"</span>
            </div>
            <div class="compute">
                <span data-testid="backend-status" data-in-use=in_use data-threads=threads>{status}</span>
                <label>
                    "compute: "
                    <select data-testid="backend-select" on:change=on_select prop:value=choice_value>
                        <option value="auto">"automatic (fastest measured)"</option>
                        <option value="webgpu" disabled=no_gpu>"WebGPU"</option>
                        <option value="cpu">"CPU (wasm)"</option>
                    </select>
                </label>
                <button class="link" data-testid="how-tab" on:click=move |_| state.show_how.set(true)>"How it works"</button>
                // A testing aid (the browser test loses the GPU on purpose); never shown.
                <button hidden data-testid="debug-lose-gpu" on:click=move |_| state.send(&Command::DebugLoseGpu)></button>
                <Show when=move || state.boot.get() == Boot::Ready>
                    <button class="link" data-testid="bench-tab" on:click=move |_| state.show_bench.set(true)>"Benchmark"</button>
                    <span class="badge" data-testid="ready">"ready"</span>
                </Show>
            </div>
        </header>
    }
}
