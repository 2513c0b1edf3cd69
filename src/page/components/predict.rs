//! Try the trained model on a new picture or live on the webcam; export the weights.

use leptos::html::Video;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, HtmlInputElement, MediaStream};

use graft::protocol::{Command, ExportFormat};

use crate::page::predict::{predict_file, start_live, stop_live};
use crate::page::state::AppState;
use crate::page::webcam;

#[component]
pub fn PredictPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let on_pick = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else { return };
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            predict_file(&state, &file);
        }
        input.set_value("");
    };
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            predict_file(&state, &file);
        }
    };
    view! {
        <section class="panel predict">
            <h2>"5 · Try it and take it with you"</h2>
            <Show when=move || state.model.with(Option::is_some) fallback=|| view! { <p class="hint">"Train a model to try it on new pictures and export it."</p> }>
                <div class="drop" on:dragover=move |ev: DragEvent| ev.prevent_default() on:drop=on_drop>
                    <label class="picker">"drop a new picture here or "
                        <input type="file" accept="image/*" data-testid="predict-input" on:change=on_pick/>
                    </label>
                    {move || state.predict_thumb.get().map(|u| view! { <img class="preview" src=u alt="picture to classify"/> })}
                </div>
                <LiveCamera/>
                {move || state.predict_error.get().map(|e| view! { <p class="error" data-testid="predict-error">{e}</p> })}
                <div class="bars" data-testid="prediction-bars" data-updates=move || state.live_count.get().to_string()>
                    {move || state.predictions.get().into_iter().map(|p| {
                        let name = p.class.clone();
                        view! {
                            <div class="bar-row" data-testid="prediction-row" data-class=p.class data-prob=p.probability.to_string()>
                                <span class="bar-label">{name}</span>
                                <span class="bar"><span style:width=format!("{:.1}%", p.probability * 100.0)></span></span>
                                <span class="bar-value">{format!("{:.1}%", p.probability * 100.0)}</span>
                            </div>
                        }
                    }).collect_view()}
                </div>
                <div class="controls">
                    <button class="primary" data-testid="export-button" on:click=move |_| state.send(&Command::Export { format: ExportFormat::Zip })>"Export weights (.zip)"</button>
                    <button data-testid="export-onnx-button" on:click=move |_| state.send(&Command::Export { format: ExportFormat::Onnx })>"Export ONNX"</button>
                </div>
                <p class="hint">"model.safetensors uses torchvision's parameter names (load it into torchvision.models.mobilenet_v2 with a "
                    <code>"Linear(1280, N)"</code>" classifier), plus labels.json and manifest.json. Made here, in your browser."</p>
                <p class="hint">"The ONNX file (opset 17, for onnxruntime, OpenCV, TensorRT, browsers…) is the whole classifier with each BatchNorm folded into its convolution. Its input "
                    <code>"input: float32[N,3,224,224]"</code>" is the RGB picture resized, centre-cropped, scaled to 0–1 and normalised with ImageNet's mean and std; it outputs "
                    <code>"logits"</code>" and "<code>"probabilities"</code>", with the class names in its metadata."</p>
            </Show>
        </section>
    }
}

/// Live prediction from the webcam: bars update as fast as the model answers.
#[component]
fn LiveCamera() -> impl IntoView {
    let state = expect_context::<AppState>();
    let video = NodeRef::<Video>::new();
    let error = RwSignal::new(None::<String>);
    let stream = StoredValue::new_local(None::<MediaStream>);
    let started = RwSignal::new(None::<f64>);
    let now = || web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0);
    let toggle = {
        move |_| {
            if state.live.get_untracked() {
                stop_live(&state);
                if let Some(s) = stream.try_update_value(Option::take).flatten() {
                    webcam::close(&s);
                }
                return;
            }

            spawn_local(async move {
                let Some(el) = video.get_untracked() else { return };
                match webcam::open(&el, None).await {
                    Ok(s) => {
                        stream.set_value(Some(s));
                        error.set(None);
                        started.set(Some(now()));
                        start_live(&state, el.unchecked_into());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    {
        on_cleanup(move || {
            stop_live(&state);
            if let Some(s) = stream.try_update_value(Option::take).flatten() {
                webcam::close(&s);
            }
        });
    }
    let rate = move || {
        let count = state.live_count.get();
        let since = started.get()?;
        let seconds = (now() - since) / 1000.0;
        (seconds > 1.0).then(|| f64::from(count) / seconds)
    };
    view! {
        <div class="live">
            <button data-testid="live-button" on:click=toggle>{move || if state.live.get() { "stop the webcam" } else { "classify the webcam live" }}</button>
            <video node_ref=video class="mirror" class:hidden=move || !state.live.get() autoplay playsinline muted data-testid="live-video"></video>
            <Show when=move || state.live.get()>
                <span class="hint" data-testid="live-rate">{move || rate().map(|r| format!("{r:.1} predictions per second")).unwrap_or_default()}</span>
            </Show>
            {move || error.get().map(|e| view! { <p class="error" data-testid="live-error">{e}</p> })}
        </div>
    }
}
