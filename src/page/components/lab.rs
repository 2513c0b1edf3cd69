//! The teaching lab: check the data before training, run the lessons side by side, find a
//! learning rate, and read a trained model (its confusions, its worst mistakes, what it looks
//! at, how it arranges the pictures). Each view says what it teaches.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use graft::protocol::{Command, PredictSource};

use super::charts::{LineChart, Series};
use crate::page::state::{AppState, SaliencyView};

const COLORS: [&str; 8] = ["#1864ab", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];

fn pct(v: Option<f32>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "–".into())
}

#[component]
pub fn LabPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    view! {
        <section class="panel lab" data-testid="lab">
            <h2>"6 · Lab: see why fine-tuning works"</h2>
            {move || lab.progress.get().map(|p| view! {
                <div class="ingest" data-testid="lab-progress"><progress max=p.total.to_string() prop:value=p.done.to_string()></progress>
                <span>{format!("{} {}/{}", p.what, p.done, p.total)}</span></div>
            })}
            <DataChecks/>
            <Compare/>
            <CompareBackbones/>
            <LrFinder/>
            <Interpretation/>
            <Saliency/>
            <PictureMap/>
        </section>
    }
}

#[component]
fn DataChecks() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    view! {
        <div class="lab-part">
            <h3>"Check the data " <button data-testid="check-data" on:click=move |_| state.send(&Command::CheckData)>"check my pictures"</button></h3>
            <p class="hint">"Before training: classes too small or unbalanced, near-duplicates (a copy in training and one in validation makes validation accuracy a lie), pictures that look more like another class, pictures unlike anything ImageNet taught the network."</p>
            {move || lab.findings.get().map(|f| if f.is_empty() {
                view! { <p data-testid="findings-empty">"Nothing to report."</p> }.into_any()
            } else {
                view! {
                    <ul class="findings" data-testid="findings">
                        {f.into_iter().map(|(text, thumbs)| view! {
                            <li data-testid="finding">{text}
                                <span class="thumbs">{thumbs.into_iter().map(|t| view! { <img src=t.url alt=""/> }).collect_view()}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            })}
        </div>
    }
}

/// The head of a comparison job: its title with run and stop buttons, what it does, its progress.
#[component]
fn LabJobHeader(
    title: &'static str,
    run_label: &'static str,
    run_testid: &'static str,
    status_testid: &'static str,
    hint: &'static str,
    running: RwSignal<bool>,
    status: RwSignal<Option<String>>,
    on_run: impl Fn() + 'static,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <h3>{title}" "
            <button data-testid=run_testid disabled=move || running.get() on:click=move |_| on_run()>{run_label}</button>
            <button disabled=move || !running.get() on:click=move |_| state.send(&Command::Stop)>"stop"</button></h3>
        <p class="hint">{hint}</p>
        {move || status.get().map(|s| view! { <p class="progress-text" data-testid=status_testid>{s}</p> })}
    }
}

#[component]
fn Compare() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    let run = move || {
        lab.compare_rows.set(Vec::new());
        lab.compare_running.set(true);
        lab.compare_status.set(Some("starting".into()));
        state.send(&Command::Compare);
    };
    let curves = Signal::derive(move || {
        const NAMES: [&str; 4] = ["frozen", "stacked", "discriminative", "one rate"];
        lab.compare_rows
            .get()
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: NAMES[i.min(3)],
                color: COLORS[i % COLORS.len()],
                values: r.val_curve.clone(),
            })
            .collect()
    });
    view! {
        <div class="lab-part">
            <LabJobHeader title="Compare the lessons" run_label="run all four" run_testid="compare-button"
                status_testid="compare-status" running=lab.compare_running status=lab.compare_status on_run=run
                hint="The same pictures, split and seed, trained four ways, one after the other, with your epochs and learning rate."/>
            <Show when=move || !lab.compare_rows.with(Vec::is_empty)>
                <table class="confusion compare" data-testid="compare-table">
                    <thead><tr><th>"run"</th><th>"val accuracy"</th><th>"val loss"</th><th>"seconds"</th><th>"img/s"</th>
                        <th title="share of your pictures whose ImageNet answer is unchanged">"ImageNet kept"</th><th>"layer change (0 → 18)"</th><th></th></tr></thead>
                    <tbody>{move || lab.compare_rows.get().into_iter().enumerate().map(|(i, r)| {
                        let max = r.layer_change.iter().copied().fold(1e-6, f32::max);
                        view! {
                            <tr data-testid="compare-row" data-lesson=format!("{:?}", r.lesson) data-acc=r.val_accuracy.unwrap_or(-1.0).to_string()
                                data-agreement=r.imagenet_agreement.unwrap_or(-1.0).to_string()>
                                <td class="lesson" style:color=COLORS[i % COLORS.len()]><b>{r.label.clone()}</b><br/><small>{r.teaches.clone()}</small><br/><small class="verdict" data-testid="compare-verdict">{r.verdict.clone()}</small></td>
                                <td>{pct(r.val_accuracy)}</td>
                                <td>{r.val_loss.map(|l| format!("{l:.3}")).unwrap_or("–".into())}</td>
                                <td>{format!("{:.1}", r.seconds)}</td>
                                <td>{format!("{:.1}", r.images_per_sec)}</td>
                                <td>{pct(r.imagenet_agreement)}</td>
                                <td><span class="spark">{r.layer_change.iter().map(|c| view! {
                                    <span style:height=format!("{:.0}%", 100.0 * c / max) title=format!("{c:.4}")></span>
                                }).collect_view()}</span></td>
                                <td><button data-testid="use-compare-model" on:click=move |_| state.send(&Command::UseCompareModel { index: i })>"use this model"</button></td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
                <LineChart title="validation accuracy per epoch" series=curves unit_range=true/>
            </Show>
        </div>
    }
}

/// Both pretrained networks on the same pictures, split, seed and settings, side by side.
#[component]
fn CompareBackbones() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    let run = move || {
        lab.backbone_rows.set(Vec::new());
        lab.backbone_running.set(true);
        lab.backbone_status.set(Some("starting".into()));
        state.send(&Command::CompareBackbones);
    };
    view! {
        <div class="lab-part">
            <LabJobHeader title="Compare the backbones" run_label="run both" run_testid="compare-backbones-button"
                status_testid="backbone-status" running=lab.backbone_running status=lab.backbone_status on_run=run
                hint="MobileNetV2 and EfficientNet-Lite0 trained on the same pictures, split and seed, in your mode and with your settings: which pretrained features suit your classes, and what they cost."/>
            <Show when=move || !lab.backbone_rows.with(Vec::is_empty)>
                <table class="confusion compare" data-testid="backbone-table">
                    <thead><tr><th>"backbone"</th><th>"val accuracy"</th><th>"seconds"</th><th>"img/s"</th><th>"model MB"</th>
                        <th>"M multiply-adds"</th><th>"ImageNet top-1"</th></tr></thead>
                    <tbody>{move || lab.backbone_rows.get().into_iter().map(|r| view! {
                        <tr data-testid="backbone-row" data-arch=r.arch.name() data-acc=r.val_accuracy.unwrap_or(-1.0).to_string()>
                            <td><b>{r.arch.title()}</b></td>
                            <td>{pct(r.val_accuracy)}</td>
                            <td>{format!("{:.1}", r.seconds)}</td>
                            <td>{format!("{:.1}", r.images_per_sec)}</td>
                            <td>{format!("{:.1}", r.model_mb)}</td>
                            <td>{format!("{:.0}", r.multiply_adds_m)}</td>
                            <td>{format!("{:.1} %", r.imagenet_top1)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            </Show>
        </div>
    }
}

#[component]
fn LrFinder() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    let apply = move |_| {
        if let Some(lr) = lab.lr_finder.get_untracked().and_then(|r| r.suggestion) {
            // Two significant digits are enough for a learning rate.
            let rounded = format!("{lr:.1e}").parse().unwrap_or(lr);
            state.settings.lr.set(rounded);
            state.settings_changed();
        }
    };
    let chart = move || {
        let r = lab.lr_finder.get()?;
        let (w, h, pad) = (320.0f64, 150.0f64, 24.0f64);
        let (lo, hi) = (r.lrs.first()?.log10(), r.lrs.last()?.log10());
        let finite: Vec<f32> = r.smoothed.iter().copied().filter(|v| v.is_finite()).collect();
        let (ymin, ymax) = finite.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let x = |lr: f64| pad + (w - 2.0 * pad) * (lr.log10() - lo) / (hi - lo).max(1e-9);
        let y = |v: f32| h - pad - (h - 2.0 * pad) * f64::from((v - ymin) / (ymax - ymin).max(1e-6));
        let points: String =
            r.lrs.iter().zip(&r.smoothed).map(|(lr, v)| format!("{:.1},{:.1} ", x(*lr), y(*v))).collect();
        let mark = r.suggestion.map(|s| view! { <line x1=x(s) x2=x(s) y1=pad y2=h - pad class="suggest"/> });
        Some(view! {
            <figure class="chart"><figcaption>"loss against learning rate (log scale)"</figcaption>
                <svg viewBox=format!("0 0 {w} {h}") data-testid="lr-chart">
                    <polyline fill="none" stroke="#d9480f" stroke-width="2" points=points/>{mark}
                    <text x=pad y=h - 4.0 class="tick">{format!("{:.0e}", r.lrs.first().copied().unwrap_or(0.0))}</text>
                    <text x=w - pad - 30.0 y=h - 4.0 class="tick">{format!("{:.0e}", r.lrs.last().copied().unwrap_or(0.0))}</text>
                </svg></figure>
        })
    };
    view! {
        <div class="lab-part">
            <h3>"Find a learning rate " <button data-testid="lr-find" on:click=move |_| state.send(&Command::LrFind)>"run the range test"</button></h3>
            <p class="hint">"A short run whose learning rate grows every step. Too small: the loss barely moves. Too large: it explodes. A good rate sits where it falls fastest."</p>
            {chart}
            {move || lab.lr_finder.get().map(|r| match r.suggestion {
                Some(lr) => view! {
                    <p data-testid="lr-suggestion" data-lr=lr.to_string()>{format!("suggested: {lr:.1e} (steepest descent) ")}
                        <button data-testid="lr-apply" on:click=apply>"use it"</button></p>
                }.into_any(),
                None => view! { <p data-testid="lr-suggestion">"no clear descent: add pictures or try again"</p> }.into_any(),
            })}
        </div>
    }
}

#[component]
fn Interpretation() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    view! {
        <div class="lab-part">
            <h3>"Read the model " <button data-testid="interpret" disabled=move || state.model.with(Option::is_none)
                on:click=move |_| state.send(&Command::Interpret)>"interpret"</button></h3>
            <p class="hint">"Its validation pictures: click a cell of the confusion matrix to see them; the pictures it is most sure about and wrong; which classes it mixes up."</p>
            {move || lab.interpretation.get().map(|v| {
                let classes = v.classes.clone();
                let header = classes.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view();
                let rows = v.confusion.iter().enumerate().map(|(t, row)| {
                    let cells = row.iter().enumerate().map(|(p, n)| {
                        let n = *n;
                        view! { <td class:diag=t == p class:picked=move || lab.selected_cell.get() == Some((t, p)) data-testid="confusion-cell"
                            on:click=move |_| lab.selected_cell.set(Some((t, p)))>{n}</td> }
                    }).collect_view();
                    view! { <tr><th>{classes.get(t).cloned().unwrap_or_default()}</th>{cells}</tr> }
                }).collect_view();
                let mut worst: Vec<_> = v.pictures.iter().filter(|p| p.top_loss_rank.is_some()).cloned().collect();
                worst.sort_by_key(|p| p.top_loss_rank);
                let name = move |i: usize| v.classes.get(i).cloned().unwrap_or_default();
                let pictures = v.pictures.clone();
                view! {
                    <p>{format!("validation accuracy {:.1}%", v.accuracy * 100.0)}</p>
                    <table class="confusion" data-testid="interpret-confusion"><thead><tr><th>"true ↓ / predicted →"</th>{header}</tr></thead><tbody>{rows}</tbody></table>
                    {move || lab.selected_cell.get().map(|(t, p)| {
                        let shown: Vec<_> = pictures.iter().filter(|x| x.label == t && x.predicted == p).cloned().collect();
                        let count = shown.len().to_string();
                        view! { <div class="thumbs cell-pictures" data-testid="cell-pictures" data-count=count>
                            {shown.into_iter().map(|x| view! { <img src=x.url.unwrap_or_default() title=x.name alt=""/> }).collect_view()}
                        </div> }
                    })}
                    <ul class="pairs" data-testid="confused-pairs">{v.pairs.iter().take(5).map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul>
                    <div class="top-losses" data-testid="top-losses">
                        {if worst.is_empty() { view! { <p>"No mistakes on the validation pictures."</p> }.into_any() } else { view! { <p>"Most confidently wrong:"</p> }.into_any() }}
                        {worst.into_iter().map(|x| view! {
                            <figure class="loss" data-testid="top-loss"><img src=x.url.unwrap_or_default() alt=""/>
                                <figcaption>{format!("a {} taken for {} ({:.0}% sure)", name(x.label), name(x.predicted), x.confidence * 100.0)}</figcaption></figure>
                        }).collect_view()}
                    </div>
                }
            })}
        </div>
    }
}

#[component]
fn Saliency() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    let on_pick = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else { return };
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            let picture = crate::page::browser::object_url(&file);
            lab.saliency.set(Some(SaliencyView {
                side: 0,
                heat: Vec::new(),
                class: String::new(),
                probability: 0.0,
                picture,
            }));
            state.send_files(&Command::Saliency { source: PredictSource::File }, &js_sys::Array::of1(&file));
        }
        input.set_value("");
    };
    view! {
        <div class="lab-part">
            <h3>"What did it look at?"</h3>
            <p class="hint">"Grad-CAM: the last block's feature maps weighted by how much each raises the predicted class's score. Red is where the evidence came from (in the centre square the model sees)."</p>
            <label class="picker">"pick a picture: " <input type="file" accept="image/*" data-testid="saliency-input"
                disabled=move || state.model.with(Option::is_none) on:change=on_pick/></label>
            {move || lab.saliency.get().filter(|s| s.side > 0).map(|s| {
                let side = s.side;
                view! {
                    <div class="saliency" data-testid="saliency">
                        <div class="overlay">
                            <img src=s.picture.unwrap_or_default() alt=""/>
                            <div class="heat" style=format!("grid-template-columns: repeat({side}, 1fr)")>
                                {s.heat.iter().map(|h| view! { <span style:opacity=format!("{:.2}", h * 0.7)></span> }).collect_view()}
                            </div>
                        </div>
                        <p>{format!("explaining `{}` ({:.0}%)", s.class, s.probability * 100.0)}</p>
                    </div>
                }
            })}
        </div>
    }
}

#[component]
fn PictureMap() -> impl IntoView {
    let state = expect_context::<AppState>();
    let lab = state.lab;
    let picked = RwSignal::new(None::<u64>);
    view! {
        <div class="lab-part">
            <h3>"Map of the pictures " <button data-testid="map-button" on:click=move |_| state.send(&Command::Map)>"draw"</button>
                <label><input type="checkbox" prop:checked=move || lab.map_after.get() on:change=move |ev| lab.map_after.set(event_target_checked(&ev))/>" after fine-tuning"</label></h3>
            <p class="hint">"Each dot is a picture, placed by the two main directions of its 1280 backbone features. Classes the backbone already separates form clumps; after a fine-tune of the backbone they move apart. A frozen backbone's map does not change."</p>
            {move || lab.map.get().map(|(classes, points)| {
                let after = lab.map_after.get();
                let xy: Vec<[f32; 2]> = points.iter().map(|p| if after { p.after.unwrap_or(p.before) } else { p.before }).collect();
                let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
                xy.iter().for_each(|[x, y]| { x0 = x0.min(*x); x1 = x1.max(*x); y0 = y0.min(*y); y1 = y1.max(*y); });
                let sx = |x: f32| 10.0 + 300.0 * (x - x0) / (x1 - x0).max(1e-6);
                let sy = |y: f32| 10.0 + 200.0 * (y - y0) / (y1 - y0).max(1e-6);
                view! {
                    <svg viewBox="0 0 320 220" class="map" data-testid="map" data-points=points.len().to_string()>
                        {points.iter().zip(&xy).map(|(p, [x, y])| {
                            let id = p.id;
                            view! { <circle cx=sx(*x) cy=sy(*y) r="4" fill=COLORS[p.label % COLORS.len()] on:click=move |_| picked.set(Some(id))/> }
                        }).collect_view()}
                    </svg>
                    <div class="legend">{classes.iter().enumerate().map(|(i, c)| view! { <span style:color=COLORS[i % COLORS.len()]>"● " {c.clone()}</span> }).collect_view()}</div>
                }
            })}
            {move || picked.get().and_then(|id| state.classes.get().iter().find_map(|c| c.thumbs.get().into_iter().find(|t| t.id == id)))
                .map(|t| view! { <img class="preview" src=t.url alt=""/> })}
        </div>
    }
}
