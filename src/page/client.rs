//! The page's link to the engine worker: picks and starts it, sends commands (queued until the
//! worker says it is ready), hands every event to the reducer, and restarts the worker if it
//! crashes (it restores the saved project on start-up).
//!
//! There are two engines, one protocol: the WebGPU engine (WebGPU, and the CPU on one thread)
//! and the multi-threaded CPU engine (every core; wasm threads need a cross-origin isolated
//! page, and wgpu cannot be built into a module with atomics). A page that is isolated and has
//! no hardware GPU adapter (none, or a software fallback like SwiftShader) runs the
//! multi-threaded one; choosing "WebGPU" or "CPU" switches engines when needed.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use leptos::prelude::*;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

use graft::protocol::{BackendChoice, Command, Event};

use crate::page::events::apply;
use crate::page::state::AppState;

/// The worker script trunk builds from `src/bin/engine.rs` (see index.html).
const ENGINE_SCRIPT: &str = "./engine_loader.js";
/// The multi-threaded engine's loader (scripts/build-threads.sh puts it beside its module).
const THREADS_SCRIPT: &str = "./engine-mt/loader.js";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// WebGPU, and the CPU backend on one thread.
    Webgpu,
    /// The CPU backend on every core (no WebGPU).
    Threads,
}

fn global_flag(name: &str) -> bool {
    Reflect::get(&js_sys::global(), &name.into()).map(|v| v.is_truthy()).unwrap_or(false)
}

/// Whether the page may share memory between threads (COOP/COEP headers).
pub fn cross_origin_isolated() -> bool {
    global_flag("crossOriginIsolated")
}

pub fn cpu_cores() -> usize {
    let cores = web_sys::window().map_or(1.0, |w| w.navigator().hardware_concurrency());
    // A small whole number (the browser's count of logical cores).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let cores = cores.clamp(1.0, 1024.0) as usize;
    cores
}

/// A query parameter of the page's address (`?engine=webgpu|threads`, `?threads=N`).
fn page_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

/// Whether WebGPU offers a hardware adapter here (not none, not a software fallback).
async fn hardware_gpu() -> bool {
    let Some(navigator) = web_sys::window().map(|w| w.navigator()) else { return false };
    let Ok(gpu) = Reflect::get(&navigator, &"gpu".into()) else { return false };
    if gpu.is_undefined() || gpu.is_null() {
        return false;
    }
    let Ok(request) = Reflect::get(&gpu, &"requestAdapter".into()).and_then(|f| f.dyn_into::<js_sys::Function>())
    else {
        return false;
    };
    let Ok(promise) = request.call0(&gpu).and_then(|p| p.dyn_into::<js_sys::Promise>()) else { return false };
    let Ok(adapter) = JsFuture::from(promise).await else { return false };
    if adapter.is_null() || adapter.is_undefined() {
        return false;
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let fallback = |o: &JsValue| Reflect::get(o, &"isFallbackAdapter".into()).map(|v| v.is_truthy()).unwrap_or(false);
    !(fallback(&info) || fallback(&adapter))
}

/// Which engine serves `choice` on this page.
async fn pick_engine(choice: BackendChoice, threads_failed: bool) -> EngineKind {
    let threads_possible = !threads_failed && cross_origin_isolated() && cpu_cores() > 1;
    match page_param("engine").as_deref() {
        Some("webgpu") => return EngineKind::Webgpu,
        Some("threads") if threads_possible => return EngineKind::Threads,
        _ => {}
    }
    if !threads_possible {
        return EngineKind::Webgpu;
    }
    match choice {
        BackendChoice::Webgpu => EngineKind::Webgpu,
        BackendChoice::Cpu => EngineKind::Threads,
        BackendChoice::Auto if hardware_gpu().await => EngineKind::Webgpu,
        BackendChoice::Auto => EngineKind::Threads,
    }
}

struct Inner {
    worker: Option<Worker>,
    kind: EngineKind,
    /// The multi-threaded engine failed to start once: stay on the other one.
    threads_failed: bool,
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
                kind: EngineKind::Webgpu,
                threads_failed: false,
                ready: false,
                queue: Vec::new(),
                handlers: Vec::new(),
                error_handler: None,
            })),
            state,
        };
        let this = engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let kind = pick_engine(BackendChoice::Auto, false).await;
            this.spawn(kind);
        });
        engine
    }

    fn new_worker(kind: EngineKind) -> Result<Worker, JsValue> {
        match kind {
            EngineKind::Webgpu => Worker::new(ENGINE_SCRIPT),
            EngineKind::Threads => {
                let options = WorkerOptions::new();
                options.set_type(WorkerType::Module);
                let url = match page_param("threads") {
                    Some(n) => format!("{THREADS_SCRIPT}?threads={n}"),
                    None => THREADS_SCRIPT.to_string(),
                };
                Worker::new_with_options(&url, &options)
            }
        }
    }

    fn spawn(&self, kind: EngineKind) {
        self.state.engine_kind.set(Some(kind));
        let worker = match Self::new_worker(kind) {
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
        inner.kind = kind;
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
        let (kind, ready) = {
            let mut inner = self.inner.borrow_mut();
            if let Some(worker) = inner.worker.take() {
                worker.terminate();
            }
            (inner.kind, inner.ready)
        };
        self.state.engine_restarts.update(|n| *n += 1);
        let kind = if kind == EngineKind::Threads && !ready {
            // It never started (a browser without wasm threads, or a build without the module).
            self.inner.borrow_mut().threads_failed = true;
            self.state
                .notice(true, format!("the multi-threaded engine did not start ({reason}); using one CPU thread"));
            EngineKind::Webgpu
        } else {
            self.state
                .notice(true, format!("the engine stopped ({reason}); restarting it and restoring your saved project"));
            kind
        };
        self.state.run.status.update(|s| {
            if *s == crate::page::state::RunStatus::Running {
                *s = crate::page::state::RunStatus::Failed;
            }
        });
        self.state.boot.set(crate::page::state::Boot::Starting("restarting the engine".into()));
        self.spawn(kind);
        // The user's backend choice survives the restart.
        self.send(&Command::SelectBackend { backend: self.state.backend_choice.get_untracked() });
    }

    /// The user chose a backend: switch engines if the other one serves it (the new engine
    /// restores the saved project), then tell the engine.
    pub fn select_backend(&self, choice: BackendChoice) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let (current, failed) = {
                let inner = this.inner.borrow();
                (inner.kind, inner.threads_failed)
            };
            let wanted = pick_engine(choice, failed).await;
            if wanted != current {
                {
                    let mut inner = this.inner.borrow_mut();
                    if let Some(worker) = inner.worker.take() {
                        worker.terminate();
                    }
                    inner.queue.clear();
                }
                this.state.boot.set(crate::page::state::Boot::Starting("switching engines".into()));
                this.spawn(wanted);
            }
            this.send(&Command::SelectBackend { backend: choice });
        });
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
