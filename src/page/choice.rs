//! Which engine runs each training mode, by measurement. On a browser's first start (and on
//! "measure again") every engine this page can run is timed — WebGPU, the CPU on every core,
//! the CPU on one thread — on a batch of backbone features (frozen) and a full training step
//! (discriminative); the fastest correct one wins each mode. The figures are remembered in
//! `localStorage` per (WebGPU adapter, cores, cross-origin isolation, app build), so later
//! starts choose at once.

use graft::protocol::{Candidate, CandidateTiming};
use graft_train::Mode;
use js_sys::Reflect;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::page::client::EngineKind;

const STORAGE_PREFIX: &str = "graft.engine-choice|";
/// The engines' wasm modules (trunk and scripts/build-threads.sh write them).
const ENGINE_MODULE: &str = "./engine_bg.wasm";
const THREADS_MODULE: &str = "./engine-mt/engine_bg.wasm";
const LAST_MODE: &str = "graft.last-mode";

/// Every candidate's figures, as measured on this browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// What the figures hold for (see [`storage_key`]).
    pub key: String,
    pub timings: Vec<CandidateTiming>,
    /// What measuring cost, engine start-ups included.
    pub seconds: f32,
}

impl Measured {
    /// The fastest candidate in `mode` among the `usable` ones.
    pub fn winner(&self, mode: Mode, usable: impl Fn(Candidate) -> bool) -> Option<&CandidateTiming> {
        self.timings
            .iter()
            .filter(|t| usable(t.candidate))
            .filter_map(|t| t.figure(mode).map(|f| (t, f)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(t, _)| t)
    }

    /// The fastest figure in each mode so far (to cut a far slower candidate short).
    pub fn best(timings: &[CandidateTiming], mode: Mode) -> Option<f32> {
        timings.iter().filter_map(|t| t.figure(mode)).reduce(f32::max)
    }
}

/// The engine that runs a candidate.
pub fn engine_of(candidate: Candidate) -> EngineKind {
    match candidate {
        Candidate::Webgpu | Candidate::CpuOne => EngineKind::Webgpu,
        Candidate::CpuThreads => EngineKind::Threads,
    }
}

/// The candidates an engine runs.
pub fn serves(kind: EngineKind, candidate: Candidate) -> bool {
    engine_of(candidate) == kind
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

pub fn load(key: &str) -> Option<Measured> {
    let text = storage()?.get_item(&format!("{STORAGE_PREFIX}{key}")).ok().flatten()?;
    serde_json::from_str::<Measured>(&text).ok().filter(|m| m.key == key)
}

/// Remembers the figures (a browser refusing storage only loses the shortcut).
pub fn save(measured: &Measured) {
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(measured)) {
        let _ = s.set_item(&format!("{STORAGE_PREFIX}{}", measured.key), &text);
    }
}

pub fn forget(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(&format!("{STORAGE_PREFIX}{key}"));
    }
}

/// The mode of the last run started here: which engine to start with.
pub fn last_mode() -> Option<Mode> {
    storage()?.get_item(LAST_MODE).ok().flatten()?.parse().ok()
}

pub fn remember_mode(mode: Mode) {
    if let Some(s) = storage() {
        let _ = s.set_item(LAST_MODE, mode.label());
    }
}

/// The page's view of WebGPU: an adapter, and whether it is a software fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub description: String,
    pub fallback: bool,
}

fn text(o: &wasm_bindgen::JsValue, name: &str) -> String {
    Reflect::get(o, &name.into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// The WebGPU adapter this page would get, if any.
pub async fn adapter() -> Option<Adapter> {
    let navigator = web_sys::window()?.navigator();
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok().filter(|g| !g.is_undefined() && !g.is_null())?;
    let request = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
    let promise = request.call0(&gpu).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    let adapter = JsFuture::from(promise).await.ok().filter(|a| !a.is_null() && !a.is_undefined())?;
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    let flag = |o: &wasm_bindgen::JsValue| Reflect::get(o, &"isFallbackAdapter".into()).is_ok_and(|v| v.is_truthy());
    let fallback = flag(&info) || flag(&adapter);
    let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .map(|k| text(&info, k))
        .filter(|s| !s.is_empty())
        .collect();
    let description = if parts.is_empty() { "unnamed adapter".to_string() } else { parts.join(" ") };
    Some(Adapter { description, fallback })
}

/// FNV-1a: a short fingerprint of what identifies a build.
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{:08x}", hash >> 32)
}

/// Size and date of a file on the server (a HEAD request): they change with every build.
async fn file_stamp(url: &str) -> String {
    let Some(window) = web_sys::window() else { return "-".into() };
    let init = js_sys::Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"HEAD".into());
    let fetch = Reflect::get(&window, &"fetch".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let Some(promise) = fetch.and_then(|f| f.call2(&window, &url.into(), &init).ok()) else { return "-".into() };
    match JsFuture::from(js_sys::Promise::resolve(&promise)).await {
        Ok(r) => {
            let r: web_sys::Response = r.unchecked_into();
            let header = |name: &str| r.headers().get(name).ok().flatten().unwrap_or_default();
            format!("{}:{}:{}:{}", r.status(), header("content-length"), header("last-modified"), header("etag"))
        }
        Err(_) => "-".into(),
    }
}

/// The engines' modules as served (the WebGPU engine's and the multi-threaded one's): a new
/// build of either measures again.
async fn build_id() -> String {
    let stamps = [file_stamp(ENGINE_MODULE).await, file_stamp(THREADS_MODULE).await];
    fingerprint(&stamps.join("|"))
}

/// What the figures hold for: the adapter, the cores, whether wasm threads are possible, the
/// app's version and build.
pub async fn storage_key(adapter: Option<&Adapter>, cores: usize, isolated: bool) -> String {
    let gpu = match adapter {
        Some(a) => format!("{}{}", a.description, if a.fallback { " (fallback)" } else { "" }),
        None => "no WebGPU".into(),
    };
    let threads = if isolated { "isolated" } else { "not isolated" };
    format!("{gpu}|{cores} cores|{threads}|{}+{}", env!("CARGO_PKG_VERSION"), build_id().await)
}
