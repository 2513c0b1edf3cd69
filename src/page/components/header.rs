//! Title, compute backend status and the backend override.

use leptos::prelude::*;

use graft::protocol::{Backend, BackendChoice, Command};

use crate::page::state::{AppState, Boot};

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
                " · backbone speed: WebGPU {}, CPU {} · using {}",
                speed(c.webgpu_speed),
                speed(c.cpu_speed),
                b.label()
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
        state.send(&Command::SelectBackend { backend });
    };
    let choice_value = move || match state.backend_choice.get() {
        BackendChoice::Auto => "auto",
        BackendChoice::Webgpu => "webgpu",
        BackendChoice::Cpu => "cpu",
    };
    let no_gpu = move || state.compute.with(|c| c.adapter.is_none() || c.webgpu_error.is_some());
    let in_use = move || state.compute.with(|c| c.in_use.map(Backend::label).unwrap_or(""));
    view! {
        <header>
            <div class="title">
                <h1>"graft"</h1>
                <span>"fine-tune a pretrained image model on your pictures — in this tab, on your GPU, no server"</span>
            </div>
            <div class="compute">
                <span data-testid="backend-status" data-in-use=in_use>{status}</span>
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
