//! Start-up inside the worker: acquire WebGPU (if any) and download the backbone with progress.
//! (`gpu_check` then checks WebGPU's answers; the page asks for speed measurements.)

use burn::tensor::Device;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response, WorkerGlobalScope};

use crate::protocol::ComputeInfo;

/// Where `arch`'s backbone is, relative to the app's root (where index.html is): int8 with
/// per-channel scales (`graft convert --store int8`), widened on load.
pub fn weights_url(arch: graft_model::Architecture) -> String {
    format!("weights/{}-int8.safetensors", arch.name())
}

/// `path` resolved against the app's root. The WebGPU engine's script sits there; the
/// multi-threaded engine's loader lives in `engine-mt/` and names the root in
/// `self.GRAFT_APP_ROOT`.
pub fn app_url(path: &str) -> String {
    let root = Reflect::get(&js_sys::global(), &"GRAFT_APP_ROOT".into()).ok().and_then(|v| v.as_string());
    format!("{}{path}", root.unwrap_or_default())
}

/// The WebGPU device, and wgpu's handle on it (to destroy it on request: a testing aid).
#[cfg(feature = "webgpu")]
pub struct Gpu {
    pub device: Device,
    pub wgpu: burn::tensor::wgpu::wgpu::Device,
}

#[cfg(feature = "webgpu")]
impl Gpu {
    pub fn destroy(&self) {
        self.wgpu.destroy();
    }
}

/// The multi-threaded engine has no WebGPU device (see Cargo.toml's `threads` feature).
#[cfg(not(feature = "webgpu"))]
pub struct Gpu {
    pub device: Device,
}

#[cfg(not(feature = "webgpu"))]
impl Gpu {
    pub fn destroy(&self) {}
}

fn js_text(e: &wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Whether `navigator.gpu` exists in this worker.
#[cfg(feature = "webgpu")]
pub fn has_webgpu() -> bool {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    Reflect::get(&global.navigator(), &"gpu".into()).map(|gpu| !gpu.is_undefined() && !gpu.is_null()).unwrap_or(false)
}

/// CPU threads the flex backend computes on (rayon's pool in the multi-threaded engine).
pub fn cpu_threads() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

#[cfg(feature = "webgpu")]
pub async fn init_webgpu(info: &mut ComputeInfo) -> Option<Gpu> {
    if !has_webgpu() {
        info.webgpu_error = Some("this browser does not expose WebGPU to workers (navigator.gpu)".into());
        return None;
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let a = setup.adapter.get_info();
            info.fallback_adapter = a.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
            // Browsers often hide the adapter's name; say what is known.
            let name = if a.name.is_empty() { "unnamed adapter".to_string() } else { a.name.clone() };
            info.adapter = Some(format!("{name} ({:?}, {:?})", a.backend, a.device_type));
            Some(Gpu { device, wgpu: setup.device })
        }
        Err(e) => {
            info.webgpu_error = Some(format!("WebGPU adapter unavailable: {e}"));
            None
        }
    }
}

#[cfg(not(feature = "webgpu"))]
pub async fn init_webgpu(info: &mut ComputeInfo) -> Option<Gpu> {
    info.webgpu_error = Some(format!(
        "this is the multi-threaded CPU engine ({} threads); WebGPU runs in the other engine (choose WebGPU)",
        cpu_threads()
    ));
    None
}

/// GETs `url` from the worker, reporting `(loaded, total)` bytes as they arrive.
pub async fn fetch_weights(url: &str, progress: impl Fn(u64, Option<u64>)) -> Result<Vec<u8>, String> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let response: Response =
        JsFuture::from(global.fetch_with_str(url)).await.map_err(|e| js_text(&e))?.unchecked_into();
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    // A compressed response's length counts compressed bytes, but the stream gives decoded ones:
    // then the total is unknown.
    let headers = response.headers();
    let encoded = headers.get("content-encoding").ok().flatten().is_some_and(|e| !e.is_empty() && e != "identity");
    let total: Option<u64> =
        if encoded { None } else { headers.get("content-length").ok().flatten().and_then(|v| v.parse().ok()) };
    let body = response.body().ok_or("empty response body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.and_then(|t| usize::try_from(t).ok()).unwrap_or(0));
    let mut last_post = 0usize;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_text(&e))?;
        if Reflect::get(&chunk, &"done".into()).map_err(|e| js_text(&e))?.is_truthy() {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| js_text(&e))?.unchecked_into();
        bytes.extend(value.to_vec());
        if bytes.len() - last_post > 256 * 1024 {
            last_post = bytes.len();
            progress(bytes.len() as u64, total);
        }
    }
    progress(bytes.len() as u64, total);
    Ok(bytes)
}

/// A query parameter of the worker's own address: the page starts an engine with
/// `?measure-only=1` (time it, restore nothing) or `?probe-fault=…` (a testing aid).
pub fn worker_param(name: &str) -> Option<String> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let search = global.location().search();
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
}
