//! The page's link to the engine worker: starts it, sends commands (queued until the worker
//! says it is ready), hands every event to the reducer, and restarts the worker if it crashes
//! (it restores the saved project on start-up).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use leptos::prelude::*;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

use graft::protocol::{Command, Event};

use crate::page::events::apply;
use crate::page::state::AppState;

/// The worker script trunk builds from `src/bin/engine.rs` (see index.html).
const ENGINE_SCRIPT: &str = "./engine_loader.js";

struct Inner {
    worker: Option<Worker>,
    ready: bool,
    queue: Vec<JsValue>,
    /// Keeps the handlers alive as long as the worker.
    handlers: Vec<Closure<dyn FnMut(MessageEvent)>>,
    error_handler: Option<Closure<dyn FnMut(web_sys::ErrorEvent)>>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Rc<RefCell<Inner>>,
    state: AppState,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
}

impl Engine {
    pub fn start(state: AppState) -> Self {
        let engine = Self {
            inner: Rc::new(RefCell::new(Inner {
                worker: None,
                ready: false,
                queue: Vec::new(),
                handlers: Vec::new(),
                error_handler: None,
            })),
            state,
        };
        engine.spawn();
        engine
    }

    fn spawn(&self) {
        let worker = match Worker::new(ENGINE_SCRIPT) {
            Ok(w) => w,
            Err(e) => {
                self.state
                    .boot
                    .set(crate::page::state::Boot::Failed(format!("the engine worker could not start: {e:?}")));
                return;
            }
        };
        let this = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let msg = Reflect::get(&ev.data(), &"msg".into()).unwrap_or(JsValue::UNDEFINED);
            match serde_wasm_bindgen::from_value::<Event>(msg) {
                Ok(Event::Ready) => this.on_ready(),
                Ok(Event::Crashed { message }) => this.restart(&message),
                Ok(event) => apply(&this.state, event),
                Err(e) => {
                    web_sys::console::error_1(&format!("graft: unreadable message from the engine: {e}").into());
                    this.state.notice(true, format!("unreadable message from the engine: {e}"));
                }
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let this = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
            this.restart(&ev.message());
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut inner = self.inner.borrow_mut();
        inner.worker = Some(worker);
        inner.ready = false;
        inner.handlers.push(on_message);
        inner.error_handler = Some(on_error);
    }

    fn on_ready(&self) {
        let (worker, queue) = {
            let mut inner = self.inner.borrow_mut();
            inner.ready = true;
            (inner.worker.clone(), std::mem::take(&mut inner.queue))
        };
        if let Some(worker) = worker {
            for msg in queue {
                let _ = worker.post_message(&msg);
            }
        }
    }

    /// The worker died (a panic, or the browser killed it): start a fresh one, which restores
    /// the saved project. Commands in flight are lost; the page says so.
    fn restart(&self, reason: &str) {
        if let Some(worker) = self.inner.borrow_mut().worker.take() {
            worker.terminate();
        }
        self.state.engine_restarts.update(|n| *n += 1);
        self.state
            .notice(true, format!("the engine stopped ({reason}); restarting it and restoring your saved project"));
        self.state.run.status.update(|s| {
            if *s == crate::page::state::RunStatus::Running {
                *s = crate::page::state::RunStatus::Failed;
            }
        });
        self.state.boot.set(crate::page::state::Boot::Starting("restarting the engine".into()));
        self.spawn();
        // The user's backend choice survives the restart.
        self.send(&Command::SelectBackend { backend: self.state.backend_choice.get_untracked() });
    }

    /// Sends a command with files beside it.
    pub fn send_with_files(&self, command: &Command, files: &Array) {
        let msg = match to_js(command) {
            Ok(m) => m,
            Err(e) => return self.state.notice(true, format!("cannot send a command: {e}")),
        };
        let envelope = js_sys::Object::new();
        let _ = Reflect::set(&envelope, &"msg".into(), &msg);
        let _ = Reflect::set(&envelope, &"files".into(), files);
        let envelope: JsValue = envelope.into();
        let mut inner = self.inner.borrow_mut();
        match (&inner.worker, inner.ready) {
            (Some(worker), true) => {
                if let Err(e) = worker.post_message(&envelope) {
                    drop(inner);
                    self.state.notice(true, format!("the engine did not take a command: {e:?}"));
                }
            }
            _ => inner.queue.push(envelope),
        }
    }

    pub fn send(&self, command: &Command) {
        self.send_with_files(command, &Array::new());
    }
}
