//! One tab owns the saved project. Two tabs of the page share one IndexedDB project; if both
//! ran an engine, the later writer would silently win (a class added in one tab lost to a
//! rename in the other). So the page takes a Web Lock before it starts its engine: the tab that
//! holds it works, any other tab says "open in another tab" and starts nothing until the user
//! takes the project over, which moves the lock (`steal`) and stops the first tab. A tab that
//! takes over always starts fresh (a reload), so it restores what the other tab saved.
//! Underneath, the engine's store refuses writes from an engine whose claim is stale
//! (`worker::idb`), which also covers browsers without Web Locks.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

const LOCK_NAME: &str = "graft-project";
/// Set just before the reload that takes the project over (per tab: `sessionStorage`).
const TAKE_OVER_KEY: &str = "graft-take-over";

/// Whether this tab may run the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabOwnership {
    /// Not decided yet (the lock is being asked for).
    Asking,
    /// This tab holds the project.
    Owner,
    /// Another open tab holds it; this one started nothing.
    Elsewhere,
    /// This tab held it until another tab took it over (`why`: how we learnt it).
    Lost { why: String },
}

/// What asking for the lock gave.
pub enum Claim {
    Held,
    Elsewhere,
    /// No Web Locks here (or they failed): the store's own check is the only guard.
    Unsupported(String),
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// Whether this load is the reload of a take-over (the flag is consumed).
pub fn taking_over() -> bool {
    let Some(storage) = session_storage() else { return false };
    let flagged = storage.get_item(TAKE_OVER_KEY).ok().flatten().is_some();
    let _ = storage.remove_item(TAKE_OVER_KEY);
    flagged
}

/// "Use it here": reload this tab and take the project from whichever tab holds it.
pub fn take_over() {
    if let Some(storage) = session_storage() {
        let _ = storage.set_item(TAKE_OVER_KEY, "1");
    }
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

fn describe(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Asks for the project's lock (`steal`: take it from the tab that holds it). Once held, the
/// lock stays until the tab closes; `on_lost` runs if another tab steals it.
pub async fn claim(steal: bool, on_lost: impl FnOnce(String) + 'static) -> Claim {
    let Some(window) = web_sys::window() else { return Claim::Unsupported("no window".into()) };
    let locks = Reflect::get(&window.navigator(), &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    let request = Reflect::get(&locks, &"request".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
    let Some(request) = request.filter(|_| !locks.is_undefined()) else {
        return Claim::Unsupported("this browser has no Web Locks".into());
    };
    let options = Object::new();
    let _ = Reflect::set(&options, &(if steal { "steal" } else { "ifAvailable" }).into(), &JsValue::TRUE);

    let (send, answer) = async_channel::bounded::<Claim>(1);
    let send = Rc::new(RefCell::new(Some(send)));
    let granted = send.clone();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let held = !lock.is_null() && !lock.is_undefined();
        if let Some(s) = granted.borrow_mut().take() {
            let _ = s.try_send(if held { Claim::Held } else { Claim::Elsewhere });
        }
        if held {
            // Never settles: the lock is released when the tab goes away (or is stolen).
            Promise::new(&mut |_, _| {}).into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let promise = match request.call3(&locks, &LOCK_NAME.into(), &options, &callback) {
        Ok(p) => p.unchecked_into::<Promise>(),
        Err(e) => return Claim::Unsupported(describe(&e)),
    };
    // The request's promise rejects when the held lock is stolen (AbortError), or at once when
    // the request itself failed (before any lock was granted).
    let on_reject = Closure::once(move |e: JsValue| {
        let why = describe(&e);
        match send.borrow_mut().take() {
            Some(s) => {
                let _ = s.try_send(Claim::Unsupported(why));
            }
            None => on_lost(why),
        }
    });
    let _ = promise.catch(&on_reject);
    on_reject.forget(); // lives as long as the lock: the tab's life
    answer.recv().await.unwrap_or_else(|_| Claim::Unsupported("the lock request was dropped".into()))
}
