//! Try the trained model on a new picture; export the weights.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, HtmlInputElement};

use crate::browser::{file_bytes, object_url};
use crate::run::{export, predict_bytes};
use crate::state::AppState;

fn predict_file(state: AppState, file: File) {
    state.predict_thumb.set(object_url(&file));
    spawn_local(async move {
        match file_bytes(&file).await {
            Ok(bytes) => predict_bytes(state, &bytes),
            Err(e) => state.predict_error.set(Some(e)),
        }
    });
}

#[component]
pub fn PredictPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let on_pick = move |ev: web_sys::Event| {
        let input: HtmlInputElement = ev.target().unwrap().unchecked_into();
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            predict_file(state, file);
        }
        input.set_value("");
    };
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            predict_file(state, file);
        }
    };
    let classes = state.run.classes;
    view! {
        <section class="panel predict">
            <h2>"5 · Try it and take it with you"</h2>
            <Show when=move || state.has_model.get() fallback=|| view! { <p class="hint">"Train a model to try it on new pictures and export it."</p> }>
                <div class="drop" on:dragover=move |ev: DragEvent| ev.prevent_default() on:drop=on_drop>
                    <label class="picker">"drop a new picture here or "
                        <input type="file" accept="image/*" data-testid="predict-input" on:change=on_pick/>
                    </label>
                    {move || state.predict_thumb.get().map(|u| view! { <img class="preview" src=u alt="picture to classify"/> })}
                </div>
                {move || state.predict_error.get().map(|e| view! { <p class="error">{e}</p> })}
                <div class="bars">
                    {move || state.predictions.get().into_iter().map(|p| {
                        let name = classes.with(|c| c.get(p.class).cloned().unwrap_or_default());
                        let label = name.clone();
                        view! {
                            <div class="bar-row" data-testid="prediction-row" data-class=label data-prob=p.probability.to_string()>
                                <span class="bar-label">{name}</span>
                                <span class="bar"><span style:width=format!("{:.1}%", p.probability * 100.0)></span></span>
                                <span class="bar-value">{format!("{:.1}%", p.probability * 100.0)}</span>
                            </div>
                        }
                    }).collect_view()}
                </div>
                <button class="primary" data-testid="export-button" on:click=move |_| export(state)>"Export weights (.zip)"</button>
                <p class="hint">"model.safetensors uses torchvision's parameter names (load it into torchvision.models.mobilenet_v2 with a "
                    <code>"Linear(1280, N)"</code>" classifier), plus labels.json and manifest.json. Made here, in your browser."</p>
            </Show>
        </section>
    }
}
