//! Title, compute backend status and the backend override.

use leptos::prelude::*;

use crate::state::{AppState, Backend, Boot};

#[component]
pub fn Header() -> impl IntoView {
    let state = expect_context::<AppState>();
    let status = move || {
        let c = state.compute.get();
        let gpu = match (&c.adapter, &c.webgpu_error) {
            (Some(a), _) => {
                format!("WebGPU adapter: {a}{}", if c.fallback_adapter { " — software (fallback) adapter" } else { "" })
            }
            (None, Some(e)) => format!("No WebGPU: {e}. Using the CPU fallback."),
            _ => "checking WebGPU…".into(),
        };
        let speed = |s: Option<f32>| s.map(|v| format!("{v:.2} img/s")).unwrap_or_else(|| "n/a".into());
        let chosen = if state.boot.get() == Boot::Ready {
            let b = state.backend_override.get().or(c.auto_choice).unwrap_or(Backend::Cpu);
            format!(
                " · backbone speed: WebGPU {}, CPU {} · using {}",
                speed(c.webgpu_speed),
                speed(c.cpu_speed),
                b.label()
            )
        } else {
            String::new()
        };
        format!("{gpu}{chosen}")
    };
    let on_select = move |ev| {
        let v = event_target_value(&ev);
        state.backend_override.set(match v.as_str() {
            "webgpu" => Some(Backend::Webgpu),
            "cpu" => Some(Backend::Cpu),
            _ => None,
        });
    };
    let no_gpu = move || state.compute.with(|c| c.adapter.is_none());
    view! {
        <header>
            <div class="title">
                <h1>"graft"</h1>
                <span>"fine-tune a pretrained image model on your pictures — in this tab, on your GPU, no server"</span>
            </div>
            <div class="compute">
                <span data-testid="backend-status">{status}</span>
                <label>
                    "compute: "
                    <select data-testid="backend-select" on:change=on_select>
                        <option value="auto" selected>"automatic (fastest measured)"</option>
                        <option value="webgpu" disabled=no_gpu>"WebGPU"</option>
                        <option value="cpu">"CPU (wasm)"</option>
                    </select>
                </label>
                <button class="link" data-testid="how-tab" on:click=move |_| state.show_how.set(true)>"How it works"</button>
                <Show when=move || state.boot.get() == Boot::Ready>
                    <button class="link" data-testid="bench-tab" on:click=move |_| state.show_bench.set(true)>"Benchmark"</button>
                    <span class="badge" data-testid="ready">"ready"</span>
                </Show>
            </div>
        </header>
    }
}
