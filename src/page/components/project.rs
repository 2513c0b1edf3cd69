//! The project bar: save the whole project as one file, open one, start a new one; what the
//! browser stored, and how much room it has.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use graft::protocol::Command;

use crate::page::state::AppState;

fn megabytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

#[component]
pub fn ProjectBar() -> impl IntoView {
    let state = expect_context::<AppState>();
    let on_open = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else { return };
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            state.send_files(&Command::OpenProject, &js_sys::Array::of1(&file));
        }
        input.set_value("");
    };
    let new_project = move |_| {
        let confirmed = web_sys::window()
            .and_then(|w| w.confirm_with_message("Start a new project? Every class, picture and the trained model in this browser will be deleted (use Save project first to keep them).").ok())
            .unwrap_or(false);
        if confirmed {
            state.send(&Command::NewProject);
        }
    };
    let storage = move || {
        let s = state.storage.get();
        let room = match (s.used, s.quota) {
            (Some(u), Some(q)) => format!("{} of {} used", megabytes(u), megabytes(q)),
            _ => "storage size unknown".into(),
        };
        let kept = match s.persisted {
            Some(true) => " · kept until you delete it",
            Some(false) => " · the browser may clear it when space runs low",
            None => "",
        };
        let offline = match s.offline {
            Some(true) => " · works offline",
            Some(false) => " · cannot work offline here",
            None => "",
        };
        format!("saved in this browser: {} pictures · {room}{kept}{offline}", s.saved_images)
    };
    view! {
        <section class="panel project" data-testid="project-bar">
            <div class="controls">
                <b>"Project"</b>
                <button data-testid="save-project" on:click=move |_| state.send(&Command::SaveProject)>"Save project"</button>
                <label class="button-like">"Open project… "
                    <input type="file" accept=".zip,application/zip" data-testid="open-project" on:change=on_open/>
                </label>
                <button data-testid="new-project" on:click=new_project>"New project"</button>
                <button data-testid="download-pictures" title="every picture (its prepared copy) in one folder per class, as a zip: for other tools, or graft's CLI"
                    on:click=move |_| state.send(&Command::DownloadPictures)>"Download pictures"</button>
                <span class="hint" data-testid="storage-line" data-saved=move || state.storage.get().saved_images.to_string()
                    data-offline=move || state.storage.get().offline.map_or("", |o| if o { "ready" } else { "no" })>{storage}</span>
            </div>
            {move || state.restored.get().map(|r| view! { <p class="restored" data-testid="restored-line">{r}</p> })}
            {move || state.job.get().map(|job| view! {
                <p class="job" data-testid="job-line" data-job=format!("{job:?}")>
                    {format!("running: {} ", job.label())}
                    <button data-testid="job-stop" on:click=move |_| state.send(&Command::Stop)>"Stop"</button>
                </p>
            })}
            <ul class="notices" data-testid="notices">
                {move || state.notices.get().into_iter().map(|n| view! { <li class:error=n.error>{n.text}</li> }).collect_view()}
            </ul>
        </section>
    }
}
