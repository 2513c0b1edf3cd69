//! "How it works": the network as it will train — locked backbone blocks, the discarded
//! ImageNet head, the new head sized to the user's classes — and why replacing beats stacking.

use graft_train::Mode;
use leptos::prelude::*;

use graft_project::HeadChoice;

use crate::page::state::AppState;

/// torchvision's `features.N` layers: (name, output channels).
const LAYERS: [(&str, u32); 19] = [
    ("stem conv", 32),
    ("block", 16),
    ("block", 24),
    ("block", 24),
    ("block", 32),
    ("block", 32),
    ("block", 32),
    ("block", 64),
    ("block", 64),
    ("block", 64),
    ("block", 64),
    ("block", 96),
    ("block", 96),
    ("block", 96),
    ("block", 160),
    ("block", 160),
    ("block", 160),
    ("block", 320),
    ("1×1 conv", 1280),
];

#[component]
pub fn HowItWorks() -> impl IntoView {
    let state = expect_context::<AppState>();
    let s = state.settings;
    let n = move || state.classes.with(|c| c.len());
    let frozen = move || s.mode.get() == Mode::Frozen;
    let layer_note = move |i: usize| {
        if frozen() {
            "locked".to_string()
        } else {
            let cfg = graft_train::TrainConfig {
                backbone_ratio: s.ratio.get(),
                layer_groups: s.layer_groups.get(),
                ..Default::default()
            };
            format!("lr×{:.3}", cfg.backbone_layer_factor(i, LAYERS.len()))
        }
    };
    let stacked = move || s.head.get() == HeadChoice::Stacked;
    // How far the kept model's layers moved from the pretrained ones (after a fine-tune).
    let change = move |i: usize| {
        state.lab.knowledge.with(|k| {
            k.as_ref().and_then(|k| {
                let max = k.layer_change.iter().copied().fold(1e-9, f32::max);
                k.layer_change.get(i).map(|c| (*c, c / max))
            })
        })
    };
    view! {
        <Show when=move || state.show_how.get()>
            <section class="panel how" data-testid="how-it-works">
                <h2>"How it works"
                    <button class="link" on:click=move |_| state.show_how.set(false)>"close"</button></h2>
                <div class="net">
                    <div class="io">"your picture" <br/> "224×224×3"</div>
                    <div class="backbone" class:locked=frozen>
                        <div class="label">{move || {
                            let name = s.backbone.get().title();
                            if frozen() { format!("{name} backbone — frozen (weights fixed, BatchNorm in inference mode)") } else { format!("{name} backbone — learning at a lower rate") }
                        }}</div>
                        <div class="blocks">
                            {LAYERS.iter().enumerate().map(|(i, (name, ch))| view! {
                                <div class="block" title=format!("features.{i}: {name}, {ch} channels")>
                                    <span class="idx">{i}</span>
                                    <span class="ch">{*ch}</span>
                                    <span class="note">{move || layer_note(i)}</span>
                                    {move || change(i).map(|(c, share)| view! {
                                        <span class="change" data-testid="layer-change" style:width=format!("{:.0}%", share * 100.0) title=format!("moved {c:.4}")></span>
                                    })}
                                </div>
                            }).collect_view()}
                        </div>
                        <div class="label">"average pool → 1280 features per picture"</div>
                        {move || state.lab.knowledge.get().map(|k| view! {
                            <div class="label" data-testid="knowledge">{format!(
                                "orange bars: how far each layer moved in the last fine-tune{}",
                                k.imagenet_agreement.map(|a| format!(" · the backbone still gives {:.0}% of your pictures the same ImageNet answer", a * 100.0)).unwrap_or_default()
                            )}</div>
                        })}
                    </div>
                    <div class="heads">
                        <div class="head old" class:discarded=move || !stacked()>
                            "ImageNet head" <br/> "Linear(1280 → 1000)"
                            <small>{move || if stacked() { "kept, frozen (the experiment)" } else { "thrown away" }}</small>
                        </div>
                        <div class="head new">
                            {move || if stacked() { format!("new layer Linear(1000 → {})", n()) } else { format!("new head Linear(1280 → {})", n()) }}
                            <small>"random start, learns at the full rate"</small>
                        </div>
                        <div class="io">{move || format!("{} scores, one per class", n())}</div>
                    </div>
                </div>
                <div class="explain">
                    <p><b>"Replace, don't stack."</b>" The pretrained network ends in a layer that turns 1280 features into 1000 ImageNet scores. graft throws that layer away and puts a fresh one with one output per class of yours, reading the 1280 features directly."</p>
                    <p>"Stacking a new layer on top of the old head (1280 → 1000 → N) forces everything through the 1000 ImageNet scores: whatever your classes have in common that ImageNet never named is squeezed out, and the old head's fixed choices bias the new one. Pick \u{201c}experiment: stack on the old head\u{201d} in the settings to see validation accuracy drop."</p>
                    <p><b>"Frozen"</b>" trains only the head on features computed once: fast, keeps all of ImageNet's knowledge, but cannot adapt the features. "<b>"Discriminative learning rates"</b>" let the backbone adapt too, slower than the head (lr × ratio) and after a head-only warm-up, so the random head's first large gradients don't wreck the pretrained features."</p>
                </div>
            </section>
        </Show>
    }
}
