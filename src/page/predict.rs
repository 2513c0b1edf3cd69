//! Asking the engine for predictions: one picked or dropped picture, or the webcam live. Live
//! prediction keeps one request in flight: a new frame is sent as soon as the last answer came,
//! so the bars update as fast as the backend classifies (several times a second on a CPU).

use std::cell::Cell;

use leptos::prelude::*;
use web_sys::{File, HtmlVideoElement};

use graft::protocol::{Command, PredictSource};

use crate::page::state::AppState;
use crate::page::webcam;

thread_local! {
    static NEXT_REQUEST: Cell<u32> = const { Cell::new(1) };
    /// The live request awaiting its answer.
    static LIVE_IN_FLIGHT: Cell<Option<u32>> = const { Cell::new(None) };
    static LIVE_VIDEO: std::cell::RefCell<Option<HtmlVideoElement>> = const { std::cell::RefCell::new(None) };
}

fn next_request() -> u32 {
    NEXT_REQUEST.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

pub fn predict_file(state: &AppState, file: &File) {
    if let Some(old) = state.predict_thumb.get_untracked() {
        crate::page::browser::revoke(&old);
    }
    state.predict_thumb.set(crate::page::browser::object_url(file));
    state.live.set(false);
    state.predictions.set(Vec::new());
    let files = js_sys::Array::of1(file);
    state.send_files(&Command::Predict { request: next_request(), source: PredictSource::File }, &files);
}

/// Starts live prediction on `video` (already showing the camera).
pub fn start_live(state: &AppState, video: HtmlVideoElement) {
    LIVE_VIDEO.with(|v| *v.borrow_mut() = Some(video));
    state.live.set(true);
    state.live_count.set(0);
    LIVE_IN_FLIGHT.with(|f| f.set(None));
    send_live_frame(state);
}

pub fn stop_live(state: &AppState) {
    state.live.set(false);
    LIVE_VIDEO.with(|v| *v.borrow_mut() = None);
    LIVE_IN_FLIGHT.with(|f| f.set(None));
}

fn send_live_frame(state: &AppState) {
    if !state.live.get_untracked() || LIVE_IN_FLIGHT.with(Cell::get).is_some() {
        return;
    }
    let frame = LIVE_VIDEO.with(|v| v.borrow().as_ref().and_then(webcam::grab));
    match frame {
        Some(frame) => {
            let request = next_request();
            LIVE_IN_FLIGHT.with(|f| f.set(Some(request)));
            state.send(&Command::Predict { request, source: PredictSource::Frame(frame) });
        }
        None => {
            // The camera has no frame yet: try again shortly.
            let state = *state;
            gloo::timers::callback::Timeout::new(100, move || send_live_frame(&state)).forget();
        }
    }
}

/// An answer arrived: count it, and send the next live frame after a short pause (the page
/// repaints the bars in between).
pub fn answered(state: &AppState, request: u32) {
    if LIVE_IN_FLIGHT.with(Cell::get) == Some(request) {
        LIVE_IN_FLIGHT.with(|f| f.set(None));
        state.live_count.update(|n| *n += 1);
        let state = *state;
        gloo::timers::callback::Timeout::new(30, move || send_live_frame(&state)).forget();
    }
}
