//! Training settings, each with the one-line trade-off it stands for.

use graft::protocol::Command;
use graft_model::Architecture;
use graft_project::HeadChoice;
use graft_train::Mode;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use crate::page::state::AppState;

#[component]
fn NumberField<T>(
    label: &'static str,
    testid: &'static str,
    value: RwSignal<T>,
    step: &'static str,
    help: &'static str,
) -> impl IntoView
where
    T: std::str::FromStr + std::fmt::Display + Clone + Send + Sync + 'static,
{
    let state = expect_context::<AppState>();
    view! {
        <label class="field" title=help>
            <span>{label}</span>
            <input type="number" step=step data-testid=testid
                prop:value=move || value.get().to_string()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<T>() {
                        value.set(v);
                        state.settings_changed();
                    }
                }/>
            <small>{help}</small>
        </label>
    }
}

/// "Expected speed here": each backbone timed on the engine in use, on request (a few seconds).
#[component]
fn BackboneSpeeds() -> impl IntoView {
    let state = expect_context::<AppState>();
    let time = move |_| {
        state.backbone_speeds.set(Vec::new());
        state.send(&Command::TimeBackbones);
    };
    let per_sec = |v: Option<f32>| v.map_or_else(|| "–".into(), |v| format!("{v:.1}"));
    view! {
        <small class="backbone-speeds">
            <button data-testid="time-backbones" disabled=move || state.job.get().is_some() on:click=time>
                "time both here"</button>
            {move || state.backbone_speeds.get().into_iter().map(|(arch, engine, speed)| {
                let (frozen, tuned) = (speed.frozen.images_per_sec, speed.discriminative.images_per_sec);
                view! {
                    <span data-testid="backbone-speed" data-arch=arch.name()
                        data-frozen=frozen.unwrap_or(0.0).to_string() data-discriminative=tuned.unwrap_or(0.0).to_string()>
                        {format!(" {} on {engine}: {} img/s frozen, {} img/s fine-tuning.", arch.title(), per_sec(frozen), per_sec(tuned))}
                    </span>
                }
            }).collect_view()}
        </small>
    }
}

#[component]
pub fn SettingsPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let s = state.settings;
    let frozen = move || s.mode.get() == Mode::Frozen;
    let keep_possible = move || {
        let names: Vec<String> = state.classes.get().iter().map(|c| c.name.get()).collect();
        graft_model::imagenet_rows_for(&names).is_some()
    };
    let on_head = move |ev| {
        s.head.set(match event_target_value(&ev).as_str() {
            "stacked" => HeadChoice::Stacked,
            "keep" => HeadChoice::KeepImagenet,
            _ => HeadChoice::Replace,
        });
        state.settings_changed();
    };
    let set_mode = move |mode: Mode| {
        s.mode.set(mode);
        state.settings_changed();
    };
    let set_flag = move |flag: RwSignal<bool>, ev: web_sys::Event| {
        flag.set(event_target_checked(&ev));
        state.settings_changed();
    };
    let on_start = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else { return };
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            state.send_files(&Command::StartFrom, &js_sys::Array::of1(&file));
        }
        input.set_value("");
    };
    let start_from =
        move || state.start_from.get().unwrap_or_else(|| "ImageNet (MobileNetV2's pretrained weights)".into());
    let on_backbone = move |ev| {
        if let Ok(arch) = event_target_value(&ev).parse::<Architecture>() {
            s.backbone.set(arch);
            state.settings_changed();
        }
    };
    let head_value = move || match s.head.get() {
        HeadChoice::Replace => "replace",
        HeadChoice::Stacked => "stacked",
        HeadChoice::KeepImagenet => "keep",
    };
    view! {
        <section class="panel settings">
            <h2>"2 · How to train"</h2>
            <div class="modes">
                <label class="mode">
                    <input type="radio" name="mode" data-testid="mode-frozen" prop:checked=frozen on:change=move |_| set_mode(Mode::Frozen)/>
                    <b>"Frozen backbone"</b>
                    <small>"Fast: features are computed once and cached, only the new head learns. Keeps everything ImageNet taught; may lack capacity for unusual pictures."</small>
                </label>
                <label class="mode">
                    <input type="radio" name="mode" data-testid="mode-discriminative" prop:checked=move || !frozen() on:change=move |_| set_mode(Mode::Discriminative)/>
                    <b>"Discriminative learning rates"</b>
                    <small>"Backbone and head both learn, the backbone slower (head lr × ratio). Adapts to your pictures; slower, and can forget early on — hence the head-only warm-up."</small>
                </label>
            </div>
            <div class="fields">
                <label class="field"><span>"pretrained network"</span>
                    <select data-testid="backbone" on:change=on_backbone prop:value=move || s.backbone.get().name()>
                        {Architecture::ALL.into_iter().map(|a| view! { <option value=a.name()>{a.title()}</option> }).collect_view()}
                    </select>
                    <small data-testid="backbone-summary">{move || {
                        let a = s.backbone.get();
                        let extra = if a == Architecture::MobileNetV2 { "" } else { "; downloaded when first trained" };
                        format!("{}{extra}", a.summary())
                    }}</small>
                    <BackboneSpeeds/></label>
                <NumberField label="epochs" testid="epochs" value=s.epochs step="1" help="passes over your training images"/>
                <NumberField label="head learning rate" testid="lr" value=s.lr step="0.0001" help="peak of the one-cycle schedule"/>
                <Show when=move || !frozen()>
                    <NumberField label="backbone/head lr ratio" testid="ratio" value=s.ratio step="0.01" help="backbone lr = head lr × ratio"/>
                    <NumberField label="warm-up epochs" testid="warmup" value=s.warmup step="1" help="head-only epochs before the backbone unfreezes"/>
                    <label class="field"><span>"per-layer rates"</span>
                        <input type="checkbox" data-testid="layer-groups" prop:checked=move || s.layer_groups.get() on:change=move |ev| set_flag(s.layer_groups, ev)/>
                        <small>"early blocks learn 10× slower than late ones"</small></label>
                </Show>
                <NumberField label="batch size" testid="batch" value=s.batch step="1" help="images per step"/>
                <NumberField label="validation split" testid="val-split" value=s.val_split step="0.05" help="share of each class held out to measure accuracy"/>
                <NumberField label="seed" testid="seed" value=s.seed step="1" help="same seed, same run"/>
                <label class="field"><span>"augmentation"</span>
                    <input type="checkbox" data-testid="augment" prop:checked=move || s.augment.get() on:change=move |ev| set_flag(s.augment, ev)/>
                    <small>"random crops, flips, colour jitter"</small></label>
                <label class="field"><span>"head"</span>
                    <select data-testid="head-kind" on:change=on_head prop:value=head_value>
                        <option value="replace">"replace the ImageNet head (recommended)"</option>
                        <option value="stacked">"experiment: stack on the old head"</option>
                        <option value="keep" disabled=move || !keep_possible()>"keep the ImageNet head (all classes are ImageNet classes)"</option>
                    </select>
                    <small>"see How it works"</small></label>
                <div class="field">
                    <span>"start from"</span>
                    <span><b data-testid="start-from">{start_from}</b>" "
                        <Show when=move || state.start_from.get().is_some()>
                            <button data-testid="start-from-imagenet" on:click=move |_| state.send(&Command::StartFromImagenet)>"use ImageNet"</button>
                        </Show>
                        <input type="file" accept=".safetensors,.pth,.pt,.zip" data-testid="start-from-input" on:change=on_start/></span>
                    <small>"a model you trained before (a graft export or project file) or a PyTorch state_dict of the chosen backbone (.pth or .safetensors, torchvision's names): its backbone, checked tensor by tensor, with a new head"</small>
                </div>
            </div>
        </section>
    }
}
