//! Webcam capture for one class: a live, mirrored preview, a camera picker when there are
//! several, and a hold-to-record button adding frames at a steady 10 per second.

use std::cell::RefCell;
use std::rc::Rc;

use gloo::timers::callback::Interval;
use leptos::html::Video;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::MediaStream;

use graft::protocol::{Command, Frame};

use crate::page::state::{AppState, ClassCard};
use crate::page::webcam;

/// Frames per second while recording.
pub const RECORD_FPS: u32 = 10;
/// Frames sent to the engine per message while recording.
const FRAMES_PER_MESSAGE: usize = 5;

#[derive(Default)]
struct Recording {
    interval: Option<Interval>,
    pending: Vec<Frame>,
    started: f64,
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

#[component]
pub fn WebcamPanel(card: ClassCard) -> impl IntoView {
    let state = expect_context::<AppState>();
    let video = NodeRef::<Video>::new();
    let error = RwSignal::new(None::<String>);
    let cameras = RwSignal::new(Vec::<(String, String)>::new());
    let chosen = RwSignal::new(String::new());
    let recorded = RwSignal::new(0usize);
    let rate = RwSignal::new(None::<f64>);
    let recording = RwSignal::new(false);
    let stream = StoredValue::new_local(None::<MediaStream>);
    let rec: Rc<RefCell<Recording>> = Rc::default();

    let start_camera = {
        move |device: Option<String>| {
            spawn_local(async move {
                let Some(el) = video.get_untracked() else { return };
                if let Some(old) = stream.try_update_value(Option::take).flatten() {
                    webcam::close(&old);
                }
                match webcam::open(&el, device.as_deref()).await {
                    Ok(s) => {
                        stream.set_value(Some(s));
                        error.set(None);
                        // Labels are only known once permission was given.
                        if let Ok(list) = webcam::cameras().await {
                            cameras.set(list);
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    {
        Effect::new(move |_| {
            if video.get().is_some() {
                start_camera(None);
            }
        });
    }
    {
        on_cleanup(move || {
            if let Some(s) = stream.try_update_value(Option::take).flatten() {
                webcam::close(&s);
            }
        });
    }

    let flush = {
        let rec = rec.clone();
        move || {
            let frames = std::mem::take(&mut rec.borrow_mut().pending);
            if !frames.is_empty() {
                state.send(&Command::AddFrames { class_id: card.id, frames });
            }
        }
    };
    let begin = {
        let rec = rec.clone();
        let flush = flush.clone();
        move |_| {
            if recording.get_untracked() || error.get_untracked().is_some() {
                return;
            }
            recording.set(true);
            recorded.set(0);
            let rec_tick = rec.clone();
            let flush = flush.clone();
            let interval = Interval::new(1000 / RECORD_FPS, move || {
                let Some(frame) = video.get_untracked().and_then(|v| webcam::grab(&v)) else { return };
                let full = {
                    let mut r = rec_tick.borrow_mut();
                    r.pending.push(frame);
                    r.pending.len() >= FRAMES_PER_MESSAGE
                };
                recorded.update(|n| *n += 1);
                if full {
                    flush();
                }
            });
            let mut r = rec.borrow_mut();
            r.interval = Some(interval);
            r.started = now_ms();
        }
    };
    let end = {
        move |_| {
            if !recording.get_untracked() {
                return;
            }
            recording.set(false);
            let started = {
                let mut r = rec.borrow_mut();
                r.interval = None;
                r.started
            };
            flush();
            let seconds = (now_ms() - started) / 1000.0;
            if seconds > 0.0 {
                #[allow(clippy::cast_precision_loss)] // a count of frames
                rate.set(Some(recorded.get_untracked() as f64 / seconds));
            }
        }
    };
    let end_leave = end.clone();
    let pick = move |ev| {
        let id = event_target_value(&ev);
        chosen.set(id.clone());
        start_camera(Some(id));
    };
    view! {
        <div class="webcam" data-testid="webcam-panel">
            <video node_ref=video class="mirror" autoplay playsinline muted data-testid="webcam-video"></video>
            {move || error.get().map(|e| view! { <p class="error" data-testid="webcam-error">{e}</p> })}
            <Show when=move || { cameras.with(Vec::len) > 1 }>
                <select data-testid="camera-select" on:change=pick prop:value=move || chosen.get()>
                    {move || cameras.get().into_iter().map(|(id, label)| view! { <option value=id>{label}</option> }).collect_view()}
                </select>
            </Show>
            <button class="primary record" class:on=move || recording.get() data-testid="record-button"
                disabled=move || error.get().is_some()
                on:pointerdown=begin on:pointerup=end on:pointerleave=end_leave>
                {move || if recording.get() { "recording… release to stop" } else { "hold to record" }}
            </button>
            <span class="hint" data-testid="record-count" data-recorded=move || recorded.get().to_string()
                data-rate=move || rate.get().map(|r| format!("{r:.2}")).unwrap_or_default()>
                {move || match rate.get() {
                    Some(r) if !recording.get() => format!("{} frames ({r:.1} per second)", recorded.get()),
                    _ => format!("{} frames", recorded.get()),
                }}
            </span>
        </div>
    }
}
