//! The worker's side of the wire: decoding commands, posting events.

use js_sys::{Array, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, File};

use crate::protocol::{Command, Event, Level};

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Plain JS objects for maps too, so the page reads what it was sent.
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
}

/// Sends one event to the page.
pub fn post(event: &Event) {
    match to_js(event) {
        Ok(value) => {
            let envelope = js_sys::Object::new();
            let _ = Reflect::set(&envelope, &"msg".into(), &value);
            if let Err(e) = scope().post_message(&envelope) {
                web_sys::console::error_2(&"graft engine: cannot post an event".into(), &e);
            }
        }
        Err(e) => web_sys::console::error_1(&format!("graft engine: cannot encode an event: {e}").into()),
    }
}

pub fn notice(level: Level, message: impl Into<String>) {
    post(&Event::Notice { level, message: message.into() });
}

/// A command and the files that came with it.
pub struct Incoming {
    pub command: Command,
    pub files: Vec<File>,
}

pub fn parse(data: &JsValue) -> Result<Incoming, String> {
    let msg = Reflect::get(data, &"msg".into()).map_err(|_| "a message without `msg`".to_string())?;
    let command: Command = serde_wasm_bindgen::from_value(msg).map_err(|e| format!("an unreadable command: {e}"))?;
    let files = Reflect::get(data, &"files".into())
        .ok()
        .filter(|f| f.is_object())
        .map(|f| f.unchecked_into::<Array>().iter().filter_map(|f| f.dyn_into::<File>().ok()).collect())
        .unwrap_or_default();
    Ok(Incoming { command, files })
}

/// Installs the message handler.
pub fn listen(mut handler: impl FnMut(Incoming) + 'static) {
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| match parse(&ev.data()) {
            Ok(incoming) => handler(incoming),
            Err(e) => notice(Level::Error, format!("engine: {e}")),
        });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
}

/// Bytes of the engine's wasm memory.
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
        .into()
}

/// Lets queued messages (Stop, Predict) run between two pieces of work.
pub async fn yield_now() {
    gloo::timers::future::TimeoutFuture::new(0).await;
}
