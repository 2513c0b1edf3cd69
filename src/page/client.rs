//! The page's link to the engine worker: picks and starts it, sends commands (queued until the
//! worker says it is ready), hands every event to the reducer, and restarts the worker if it
//! crashes (it restores the saved project on start-up).
//!
//! There are two engines, one protocol: the WebGPU engine (WebGPU, and the CPU on one thread)
//! and the multi-threaded CPU engine (every core; wasm threads need a cross-origin isolated
//! page, and wgpu cannot be built into a module with atomics). Which one runs is measured: on a
//! browser's first start each engine this page can run times its backends in both modes
//! (`Command::Measure`; the engine not in use is started "measure-only" for it, then closed),
//! and the fastest correct one wins each mode (`page::choice`, remembered in storage). A run
//! starts on the engine that won its mode, switching engines first if needed; choosing
//! "WebGPU" or "CPU" in the header overrides the measurement.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use leptos::prelude::*;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

use graft::protocol::{Backend, BackendChoice, Candidate, CandidateTiming, Command, Event, ModeBackends};
use graft_train::Mode;

use crate::page::choice::{self, Adapter, Measured};
use crate::page::events::apply;
use crate::page::state::{AppState, Boot, ChoiceSource};
use crate::page::tab::{self, Claim, TabOwnership};

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

impl EngineKind {
    fn name(self) -> &'static str {
        match self {
            EngineKind::Webgpu => "the WebGPU engine",
            EngineKind::Threads => "the multi-threaded CPU engine",
        }
    }
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

/// A query parameter of the page's address (`?engine=webgpu|threads`, `?threads=N`,
/// `?probe-fault=…`).
fn page_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

/// A measurement in progress.
struct Measuring {
    /// What measuring cost so far, in seconds: the engine in use's own timing, and the whole life
    /// of each engine started only to measure (its start-up included).
    cost: f64,
    /// When the measure-only engine was started.
    measurer_started_ms: f64,
    timings: Vec<CandidateTiming>,
    /// Engines still to measure after the one measuring now.
    next: Vec<EngineKind>,
    /// The engine started only to measure (none while the engine in use measures).
    measurer: Option<(Worker, EngineKind)>,
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
    /// What the page learned of WebGPU at start-up.
    adapter: Option<Adapter>,
    measuring: Option<Measuring>,
    measurer_handlers: Vec<Closure<dyn FnMut(MessageEvent)>>,
    measurer_error: Option<Closure<dyn FnMut(web_sys::ErrorEvent)>>,
}

/// The page's end of the link to the engine worker (the worker's own state is `worker::engine::Engine`).
#[derive(Clone)]
pub struct EngineLink {
    inner: Rc<RefCell<Inner>>,
    state: AppState,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
}

fn envelope(command: &Command) -> Result<JsValue, serde_wasm_bindgen::Error> {
    let msg = to_js(command)?;
    let envelope = js_sys::Object::new();
    let _ = Reflect::set(&envelope, &"msg".into(), &msg);
    Ok(envelope.into())
}

fn event_of(ev: &MessageEvent) -> Result<Event, serde_wasm_bindgen::Error> {
    let msg = Reflect::get(&ev.data(), &"msg".into()).unwrap_or(JsValue::UNDEFINED);
    serde_wasm_bindgen::from_value::<Event>(msg)
}

/// The candidates of an engine that could not be measured, and why.
fn refusals(kind: EngineKind, reason: &str) -> Vec<CandidateTiming> {
    Candidate::ALL
        .into_iter()
        .filter(|c| choice::serves(kind, *c))
        .map(|candidate| CandidateTiming {
            candidate,
            threads: if candidate == Candidate::CpuThreads { cpu_cores() } else { 1 },
            speed: None,
            refused: Some(format!("{} did not run: {reason}", kind.name())),
        })
        .collect()
}

/// A worker of `kind`; `measure_only`: it restores no project and only answers `Measure`.
fn new_worker(kind: EngineKind, measure_only: bool) -> Result<Worker, JsValue> {
    let mut params = Vec::new();
    if measure_only {
        params.push("measure-only=1".to_string());
    }
    match kind {
        EngineKind::Webgpu => {
            // A testing aid: the page's `?probe-fault=…` reaches the WebGPU check.
            if let Some(fault) = page_param("probe-fault") {
                params.push(format!("probe-fault={}", String::from(js_sys::encode_uri_component(&fault))));
            }
            let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
            Worker::new(&format!("{ENGINE_SCRIPT}{query}"))
        }
        EngineKind::Threads => {
            let options = WorkerOptions::new();
            options.set_type(WorkerType::Module);
            if let Some(n) = page_param("threads") {
                params.push(format!("threads={}", String::from(js_sys::encode_uri_component(&n))));
            }
            let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
            Worker::new_with_options(&format!("{THREADS_SCRIPT}{query}"), &options)
        }
    }
}

impl EngineLink {
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
                adapter: None,
                measuring: None,
                measurer_handlers: Vec::new(),
                measurer_error: None,
            })),
            state,
        };
        let this = engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            // One tab owns the saved project: no engine starts before this tab holds it.
            let lost = this.clone();
            match tab::claim(tab::taking_over(), move |why| lost.lose_tab(&why)).await {
                Claim::Held => {}
                Claim::Unsupported(why) => {
                    web_sys::console::warn_1(&format!("graft: no tab lock ({why}); the store's claim guards").into());
                }
                Claim::Elsewhere => return this.state.tab.set(TabOwnership::Elsewhere),
            }
            this.state.tab.set(TabOwnership::Owner);
            let adapter = choice::adapter().await;
            let key = choice::storage_key(adapter.as_ref(), cpu_cores(), cross_origin_isolated()).await;
            this.inner.borrow_mut().adapter = adapter;
            this.state.choice.key.set(key.clone());
            match choice::load(&key) {
                Some(measured) => {
                    this.state.choice.measured.set(Some(measured));
                    this.state.choice.source.set(Some(ChoiceSource::Stored));
                    let kind = this.wanted(choice::last_mode().unwrap_or(Mode::Frozen));
                    this.spawn(kind);
                }
                None => {
                    let kind = this.wanted(Mode::Frozen);
                    this.spawn(kind);
                    this.measure();
                }
            }
        });
        engine
    }

    fn threads_possible(&self) -> bool {
        !self.inner.borrow().threads_failed && cross_origin_isolated() && cpu_cores() > 1
    }

    /// Whether WebGPU may train this session: not refused by its start-up check, not lost.
    fn webgpu_usable(&self) -> bool {
        let refused = self.state.choice.gpu_check.with_untracked(|c| c.as_ref().is_some_and(|c| !c.passed));
        let lost = self.inner.borrow().kind == EngineKind::Webgpu
            && self.state.compute.with_untracked(|c| c.gpu_check.is_some() && c.webgpu_error.is_some());
        !refused && !lost
    }

    fn usable(&self, candidate: Candidate) -> bool {
        match candidate {
            Candidate::Webgpu => self.webgpu_usable(),
            Candidate::CpuThreads => self.threads_possible(),
            Candidate::CpuOne => true,
        }
    }

    /// The measured winner of `mode` (none before measuring).
    pub fn winner(&self, mode: Mode) -> Option<CandidateTiming> {
        let measured = self.state.choice.measured.get_untracked()?;
        measured.winner(mode, |c| self.usable(c)).cloned()
    }

    /// Which engine serves a run in `mode`: the user's choice, else the measured winner, else (not
    /// measured yet) WebGPU's engine when the adapter is hardware.
    fn wanted(&self, mode: Mode) -> EngineKind {
        let threads_possible = self.threads_possible();
        match page_param("engine").as_deref() {
            Some("webgpu") => return EngineKind::Webgpu,
            Some("threads") if threads_possible => return EngineKind::Threads,
            _ => {}
        }
        if !threads_possible {
            return EngineKind::Webgpu;
        }
        match self.state.backend_choice.get_untracked() {
            BackendChoice::Webgpu => EngineKind::Webgpu,
            BackendChoice::Cpu => EngineKind::Threads,
            BackendChoice::Auto => match self.winner(mode) {
                Some(t) => choice::engine_of(t.candidate),
                None if self.inner.borrow().adapter.as_ref().is_some_and(|a| !a.fallback) => EngineKind::Webgpu,
                None => EngineKind::Threads,
            },
        }
    }

    /// Within `kind`, the fastest of its own backends per mode (for "automatic").
    fn backends_for(&self, kind: EngineKind) -> Option<ModeBackends> {
        let measured = self.state.choice.measured.get_untracked()?;
        let pick = |mode| {
            measured
                .winner(mode, |c| choice::serves(kind, c) && self.usable(c))
                .map_or(Backend::Cpu, |t| t.candidate.backend())
        };
        Some(ModeBackends { frozen: pick(Mode::Frozen), discriminative: pick(Mode::Discriminative) })
    }

    fn spawn(&self, kind: EngineKind) {
        if matches!(self.state.tab.get_untracked(), TabOwnership::Lost { .. }) {
            return; // another tab owns the project now
        }
        self.state.engine_kind.set(Some(kind));
        let worker = match new_worker(kind, false) {
            Ok(w) => w,
            Err(e) => {
                self.state.boot.set(Boot::Failed(format!("the engine worker could not start: {e:?}")));
                return;
            }
        };
        let this = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| match event_of(&ev) {
            Ok(Event::Ready) => this.on_ready(),
            Ok(Event::Crashed { message }) => this.restart(&message),
            Ok(Event::TakenOver) => this.lose_tab("its saves were refused"),
            Ok(Event::Measuring { what }) => this.state.choice.measuring.set(Some(what)),
            Ok(Event::Measured { timings, seconds }) => this.on_measured(timings, Some(seconds)),
            Ok(event) => apply(&this.state, event),
            Err(e) => {
                web_sys::console::error_1(&format!("graft: unreadable message from the engine: {e}").into());
                this.state.notice(true, format!("unreadable message from the engine: {e}"));
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let this = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
            this.restart(&ev.message());
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        {
            let mut inner = self.inner.borrow_mut();
            inner.worker = Some(worker);
            inner.kind = kind;
            inner.ready = false;
            inner.handlers.push(on_message);
            inner.error_handler = Some(on_error);
        }
        // The user's choice and the measured one reach every engine started.
        self.send(&Command::SelectBackend { backend: self.state.backend_choice.get_untracked() });
        if let Some(backends) = self.backends_for(kind) {
            self.send(&Command::UseMeasured { backends });
        }
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
        self.state.boot.set(Boot::Starting("restarting the engine".into()));
        self.spawn(kind);
        // A measurement the engine in use was making starts over on the new one.
        let remeasure = self.inner.borrow().measuring.as_ref().is_some_and(|m| m.measurer.is_none());
        if remeasure {
            self.send_measure(None);
        }
    }

    /// Another tab took the project over: every engine of this tab stops (a run in progress
    /// with it), so nothing here can write over what the other tab saves.
    pub fn lose_tab(&self, why: &str) {
        {
            let mut inner = self.inner.borrow_mut();
            if let Some(worker) = inner.worker.take() {
                worker.terminate();
            }
            if let Some((worker, _)) = inner.measuring.take().and_then(|m| m.measurer) {
                worker.terminate();
            }
            inner.queue.clear();
        }
        self.state.choice.measuring.set(None);
        self.state.tab.set(TabOwnership::Lost { why: why.to_string() });
    }

    /// Replaces the engine in use by one of `kind` (which restores the saved project). `quiet`:
    /// the page stays as it is meanwhile (a run is starting on it).
    fn switch_to(&self, kind: EngineKind, quiet: bool) {
        {
            let mut inner = self.inner.borrow_mut();
            if let Some(worker) = inner.worker.take() {
                worker.terminate();
            }
            inner.queue.clear();
        }
        self.state.quiet_switch.set(quiet);
        self.state.boot.set(Boot::Starting("switching engines".into()));
        self.spawn(kind);
    }

    /// The user chose a backend: switch engines if the other one serves it (the new engine
    /// restores the saved project), then tell the engine.
    pub fn select_backend(&self, choice: BackendChoice) {
        self.state.backend_choice.set(choice);
        let wanted = self.wanted(self.state.settings.mode.get_untracked());
        let current = self.inner.borrow().kind;
        if wanted != current {
            self.switch_to(wanted, false);
        } else {
            self.send(&Command::SelectBackend { backend: choice });
        }
    }

    /// Starts a run on the engine measured fastest for its mode, switching engines first if
    /// needed (not while pictures are being added: they would be lost with the old engine).
    pub fn train(&self, resume: bool) {
        let mode = self.state.settings.mode.get_untracked();
        choice::remember_mode(mode);
        let wanted = self.wanted(mode);
        let current = self.inner.borrow().kind;
        if wanted != current && self.state.ingest.get_untracked().is_none() {
            self.state.run.progress.update(|p| {
                p.text = format!("starting {} (measured fastest for {} runs)…", wanted.name(), mode.label());
            });
            self.switch_to(wanted, true);
            // What the form shows is what the new engine trains with.
            self.send(&Command::SetSettings { settings: self.state.settings.settings() });
        }
        self.send(&Command::Train { resume });
    }

    // ---- measuring -----------------------------------------------------------------------

    /// Measures every engine this page can run (the one in use first), then remembers and
    /// applies the result. The page shows the measurement in place of the app meanwhile.
    pub fn measure(&self) {
        {
            let mut inner = self.inner.borrow_mut();
            if inner.measuring.is_some() {
                return;
            }
            let other = match inner.kind {
                EngineKind::Webgpu => EngineKind::Threads,
                EngineKind::Threads => EngineKind::Webgpu,
            };
            let possible =
                other == EngineKind::Webgpu || (!inner.threads_failed && cross_origin_isolated() && cpu_cores() > 1);
            let next = if possible { vec![other] } else { Vec::new() };
            inner.measuring =
                Some(Measuring { cost: 0.0, measurer_started_ms: 0.0, timings: Vec::new(), next, measurer: None });
        }
        self.state.choice.measuring.set(Some("starting".into()));
        self.send_measure(None);
    }

    /// Forgets the remembered figures and measures again.
    pub fn measure_again(&self) {
        choice::forget(&self.state.choice.key.get_untracked());
        self.measure();
    }

    /// Sends `Measure` (with the best figures so far) to the measurer, or to the engine in use.
    fn send_measure(&self, to: Option<&Worker>) {
        let (frozen, tuned) = self
            .inner
            .borrow()
            .measuring
            .as_ref()
            .map(|m| (Measured::best(&m.timings, Mode::Frozen), Measured::best(&m.timings, Mode::Discriminative)))
            .unwrap_or_default();
        let command = Command::Measure { best_frozen: frozen, best_discriminative: tuned };
        match to {
            Some(worker) => {
                if let Ok(msg) = envelope(&command) {
                    let _ = worker.post_message(&msg);
                }
            }
            None => self.send(&command),
        }
    }

    /// One engine's figures arrived (`seconds`: what timing cost the engine in use; none from a
    /// measure-only engine, whose whole life counts): measure the next engine, or finish.
    fn on_measured(&self, timings: Vec<CandidateTiming>, seconds: Option<f32>) {
        let next = {
            let mut inner = self.inner.borrow_mut();
            let Some(m) = inner.measuring.as_mut() else { return };
            m.timings.extend(timings);
            match m.measurer.take() {
                Some((worker, _)) => {
                    worker.terminate();
                    m.cost += (now_ms() - m.measurer_started_ms) / 1000.0;
                }
                None => m.cost += f64::from(seconds.unwrap_or_default()),
            }
            m.next.pop()
        };
        match next {
            Some(kind) => self.start_measurer(kind),
            None => self.finish_measuring(),
        }
    }

    /// Starts a measure-only engine of `kind`; it is sent `Measure` once it listens.
    fn start_measurer(&self, kind: EngineKind) {
        let worker = match new_worker(kind, true) {
            Ok(w) => w,
            Err(e) => return self.on_measured(refusals(kind, &format!("{e:?}")), None),
        };
        let this = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| match event_of(&ev) {
            Ok(Event::Ready) => {
                let worker = this.inner.borrow().measuring.as_ref().and_then(|m| m.measurer.clone()).map(|(w, _)| w);
                this.send_measure(worker.as_ref());
            }
            Ok(Event::Measuring { what }) => this.state.choice.measuring.set(Some(what)),
            Ok(Event::Measured { timings, .. }) => this.on_measured(timings, None),
            // Its WebGPU check, and the notice of a refusal, are this session's too.
            Ok(Event::Compute(info)) if info.gpu_check.is_some() => this.state.choice.gpu_check.set(info.gpu_check),
            Ok(event @ Event::Notice { .. }) => apply(&this.state, event),
            Ok(Event::Crashed { message } | Event::Boot(graft::protocol::BootStage::Failed { message })) => {
                this.measurer_failed(kind, &message);
            }
            _ => {}
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let this = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
            this.measurer_failed(kind, &ev.message());
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut inner = self.inner.borrow_mut();
        inner.measurer_handlers.push(on_message);
        inner.measurer_error = Some(on_error);
        match inner.measuring.as_mut() {
            Some(m) => {
                m.measurer = Some((worker, kind));
                m.measurer_started_ms = now_ms();
            }
            None => worker.terminate(),
        }
    }

    /// The measure-only engine did not start or crashed: its candidates are marked as such and
    /// the measurement goes on without them.
    fn measurer_failed(&self, kind: EngineKind, reason: &str) {
        let running = self.inner.borrow().measuring.as_ref().is_some_and(|m| m.measurer.is_some());
        if !running {
            return; // already handled (a crash is reported twice: the event and the error)
        }
        if kind == EngineKind::Threads {
            self.inner.borrow_mut().threads_failed = true;
        }
        self.on_measured(refusals(kind, reason), None);
    }

    /// Remembers the figures, gives the engine in use its per-mode choice, and switches engines
    /// if another one won the form's mode.
    fn finish_measuring(&self) {
        let Some(m) = self.inner.borrow_mut().measuring.take() else { return };
        // Seconds: a small float.
        #[allow(clippy::cast_possible_truncation)]
        let seconds = m.cost as f32;
        let measured = Measured { key: self.state.choice.key.get_untracked(), timings: m.timings, seconds };
        choice::save(&measured);
        self.state.choice.measured.set(Some(measured));
        self.state.choice.source.set(Some(ChoiceSource::Measured));
        self.state.choice.measuring.set(None);
        let wanted = self.wanted(self.state.settings.mode.get_untracked());
        let current = self.inner.borrow().kind;
        if wanted != current {
            self.switch_to(wanted, false);
        } else if let Some(backends) = self.backends_for(current) {
            self.send(&Command::UseMeasured { backends });
        }
    }

    // ---- sending -------------------------------------------------------------------------

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
