//! Title, compute backend status, WebGPU's start-up check, the measured engine choice per mode,
//! and the backend override.

use leptos::prelude::*;

use graft::protocol::{Backend, BackendChoice, CandidateTiming, Command};
use graft_train::Mode;

use crate::page::client::{cpu_cores, cross_origin_isolated, EngineKind};
use crate::page::state::{AppState, Boot};
use crate::page::tab::TabOwnership;

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

/// One candidate's figure in one mode, or why there is none.
fn figure(t: &CandidateTiming, mode: Mode) -> (String, Option<String>) {
    let label = t.label();
    if let Some(reason) = &t.refused {
        return (format!("{label} refused"), Some(reason.clone()));
    }
    let Some(speed) = &t.speed else { return (format!("{label} not measured"), None) };
    let m = match mode {
        Mode::Frozen => &speed.frozen,
        Mode::Discriminative => &speed.discriminative,
    };
    match (m.images_per_sec, &m.cut_short) {
        (Some(v), None) => (format!("{label} {v:.1} img/s"), None),
        (Some(v), Some(why)) => (format!("{label} {v:.2} img/s (cut short)"), Some(why.clone())),
        (None, why) => (format!("{label} not measured"), why.clone()),
    }
}

/// "frozen: WebGPU 0.62 img/s (cut short) · CPU 2 threads 63.0 img/s → CPU 2 threads".
#[component]
fn ModeChoice(mode: Mode) -> impl IntoView {
    let state = expect_context::<AppState>();
    let winner = move || {
        state.choice.measured.track();
        state.choice.gpu_check.track();
        state.engine.with_value(|e| e.as_ref().and_then(|e| e.winner(mode)))
    };
    let parts = move || {
        state.choice.measured.get().map_or_else(Vec::new, |m| {
            let mut timings = m.timings;
            // Fastest first.
            timings.sort_by(|a, b| b.figure(mode).unwrap_or(-1.0).total_cmp(&a.figure(mode).unwrap_or(-1.0)));
            timings.iter().map(|t| figure(t, mode)).collect::<Vec<_>>()
        })
    };
    let forced = move || match state.backend_choice.get() {
        BackendChoice::Auto => String::new(),
        BackendChoice::Webgpu => " (overridden: WebGPU chosen)".into(),
        BackendChoice::Cpu => " (overridden: CPU chosen)".into(),
    };
    view! {
        <span class="mode-choice" data-testid=format!("choice-{}", mode.label())
            data-winner=move || winner().map(|w| w.candidate.key()).unwrap_or("")>
            {format!("{}: ", mode.label())}
            {move || {
                let parts = parts();
                let n = parts.len();
                parts.into_iter().enumerate().map(|(i, (text, why))| view! {
                    <span title=why.unwrap_or_default()>{text}</span>{if i + 1 < n { " · " } else { "" }}
                }).collect_view()
            }}
            {move || format!(" → {}{}", winner().map(|w| w.label()).unwrap_or_else(|| "?".into()), forced())}
        </span>
    }
}

#[component]
fn EngineChoice() -> impl IntoView {
    let state = expect_context::<AppState>();
    let source = move || state.choice.source.get().map(|s| s.key()).unwrap_or("");
    let note = move || {
        let seconds = state.choice.measured.with(|m| m.as_ref().map(|m| m.seconds)).unwrap_or_default();
        match state.choice.source.get() {
            Some(crate::page::state::ChoiceSource::Stored) => {
                format!("remembered for this browser (measuring took {seconds:.1} s)")
            }
            _ => format!("measured in {seconds:.1} s, remembered for this browser"),
        }
    };
    let again = move |_| {
        state.engine.with_value(|e| {
            if let Some(e) = e {
                e.measure_again();
            }
        })
    };
    let running = move || state.run.status.get() == crate::page::state::RunStatus::Running;
    view! {
        <Show when=move || state.choice.measured.with(Option::is_some)>
            <div class="engine-choice" data-testid="engine-choice" data-source=source
                data-key=move || state.choice.key.get()>
                <ModeChoice mode=Mode::Frozen/>
                <ModeChoice mode=Mode::Discriminative/>
                <span class="hint">{note}</span>
                <button class="link" data-testid="measure-again" disabled=running on:click=again>"measure again"</button>
            </div>
        </Show>
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
        let chosen = match (state.boot.get() == Boot::Ready, c.in_use) {
            (true, Some(b)) => {
                format!(" · using {} · {}", b.label(), threads_note(state.engine_kind.get(), c.cpu_threads.max(1)))
            }
            _ => String::new(),
        };
        format!("{gpu}{chosen}")
    };
    let check = move || {
        if state.compute.with(|c| c.gpu_checking) {
            let text = "checking WebGPU's answers (one training step against the CPU's) before offering it…";
            return Some(view! { <span class="gpu-check" data-testid="gpu-checking">{text}</span> }.into_any());
        }
        state.choice.gpu_check.get().map(|c| {
            let text = if c.passed {
                format!("WebGPU check passed: {}", c.summary)
            } else {
                format!("WebGPU refused for this session: {}", c.summary)
            };
            view! { <span class="gpu-check" class:error=!c.passed data-testid="gpu-check" data-passed=c.passed.to_string()>{text}</span> }.into_any()
        })
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
    // The multi-threaded engine has no WebGPU of its own: choosing WebGPU switches engines. A
    // WebGPU not checked yet, or refused by its check, is not offered.
    let no_gpu = move || {
        let refused = state.choice.gpu_check.with(|c| c.as_ref().is_some_and(|c| !c.passed));
        refused
            || (state.engine_kind.get() != Some(EngineKind::Threads)
                && state.compute.with(|c| c.adapter.is_none() || c.webgpu_error.is_some() || c.gpu_checking))
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
                <Show when=move || {
                    !cross_origin_isolated() && cpu_cores() > 1 && crate::page::offline::available() && state.usable()
                }>
                    <button class="link" data-testid="isolate-with-sw"
                        title="graft's service worker adds the two headers this host does not send, then the page reloads"
                        on:click=move |_| leptos::task::spawn_local(crate::page::offline::isolate_and_reload(state))>
                        "use every core"
                    </button>
                </Show>
                {check}
                <EngineChoice/>
                <label>
                    "compute: "
                    <select data-testid="backend-select" on:change=on_select prop:value=choice_value>
                        <option value="auto">"automatic (fastest measured, per mode)"</option>
                        <option value="webgpu" disabled=no_gpu>"WebGPU"</option>
                        <option value="cpu">"CPU (wasm)"</option>
                    </select>
                </label>
                <button class="link" data-testid="how-tab" on:click=move |_| state.show_how.set(true)>"How it works"</button>
                // A testing aid (the browser test loses the GPU on purpose); never shown.
                <button hidden data-testid="debug-lose-gpu" on:click=move |_| state.send(&Command::DebugLoseGpu)></button>
                <Show when=move || {
                    state.boot.get() == Boot::Ready
                        && state.choice.measuring.get().is_none()
                        && state.tab.get() == TabOwnership::Owner
                }>
                    <button class="link" data-testid="bench-tab" on:click=move |_| state.show_bench.set(true)>"Benchmark"</button>
                    <span class="badge" data-testid="ready">"ready"</span>
                </Show>
            </div>
        </header>
    }
}
