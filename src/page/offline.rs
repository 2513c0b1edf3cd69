//! Offline after the first visit: the page registers graft's service worker (`static/sw.js`,
//! written into each build by `scripts/make-sw.mjs`), which keeps this build's page, engines and
//! backbone in a cache and serves them when the network fails.
//!
//! Every core on a host that cannot send COOP/COEP (GitHub Pages and most static hosts): at the
//! user's request ("use every core") the same service worker is registered with `?isolate=1` and
//! adds the two headers to this origin's responses, so the reloaded page is cross-origin isolated
//! and the multi-threaded engine can run.

use js_sys::{Function, Promise, Reflect};
use leptos::prelude::Update;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::page::state::AppState;

const SCRIPT: &str = "./sw.js";
const SCRIPT_ISOLATING: &str = "./sw.js?isolate=1";
/// Remembers (per origin, in `localStorage`) that the user asked for every core.
const ISOLATE_KEY: &str = "graft.isolate-with-service-worker";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn isolating() -> bool {
    local_storage().and_then(|s| s.get_item(ISOLATE_KEY).ok().flatten()).is_some()
}

/// Whether this browser has service workers here (a secure context).
pub fn available() -> bool {
    web_sys::window().is_some_and(|w| present(&get(&w.navigator(), "serviceWorker")))
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn present(value: &JsValue) -> bool {
    !value.is_undefined() && !value.is_null()
}

/// Whether the service worker being installed ends up active (`false`: its install failed,
/// e.g. for lack of room; it then gave back what it cached).
async fn installed(worker: JsValue) -> bool {
    let promise = Promise::new(&mut |resolve, _reject| {
        let target = worker.clone();
        let on_change = Closure::<dyn FnMut()>::new(move || match get(&target, "state").as_string().as_deref() {
            Some("activated") => {
                let _ = resolve.call1(&JsValue::NULL, &JsValue::TRUE);
            }
            Some("redundant") => {
                let _ = resolve.call1(&JsValue::NULL, &JsValue::FALSE);
            }
            _ => {}
        });
        if let Ok(add) = get(&worker, "addEventListener").dyn_into::<Function>() {
            let _ = add.call2(&worker, &"statechange".into(), on_change.as_ref());
        }
        on_change.forget(); // one per page load
    });
    JsFuture::from(promise).await.ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

/// Registers the service worker, then waits until it is active (this build cached) or its
/// install failed, and says which in the page. Started once the engine is ready, so caching never
/// competes with the first load.
pub async fn register(state: AppState) {
    let works = register_script(if isolating() { SCRIPT_ISOLATING } else { SCRIPT }).await;
    state.storage.update(|s| s.offline = Some(works));
}

/// "Use every core": the service worker that adds COOP/COEP, then a reload into the isolated page.
pub async fn isolate_and_reload(state: AppState) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(ISOLATE_KEY, "1");
    }
    if register_script(SCRIPT_ISOLATING).await {
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    } else {
        state.notice(true, "every core needs graft's service worker, which could not start here".to_string());
    }
}

async fn register_script(script: &str) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let container = get(&window.navigator(), "serviceWorker");
    if !present(&container) {
        return false; // not a secure context, or a browser without service workers
    }
    let Ok(register) = get(&container, "register").dyn_into::<Function>() else { return false };
    let registering = register.call1(&container, &script.into()).ok().and_then(|p| p.dyn_into::<Promise>().ok());
    let Some(registering) = registering else { return false };
    match JsFuture::from(registering).await {
        Ok(registration) => {
            let pending = [get(&registration, "installing"), get(&registration, "waiting")].into_iter().find(present);
            match pending {
                Some(worker) => installed(worker).await,
                None => present(&get(&registration, "active")),
            }
        }
        Err(e) => {
            web_sys::console::warn_2(&"graft: the offline cache could not be set up".into(), &e);
            false
        }
    }
}
