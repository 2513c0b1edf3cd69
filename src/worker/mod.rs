//! The engine worker: everything that computes runs here, off the page's thread — decoding and
//! preparing pictures, training, prediction, export, storage, the benchmark. The page sends
//! commands and renders the events this posts.

mod boot;
mod decode;
mod engine;
#[cfg(feature = "webgpu")]
mod gpu_check;
mod idb;
mod ingest;
mod jobs;
mod lab;
mod link;
mod measure;
mod restore;
mod starting;
mod startup;
mod storage;
mod training;

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;

use crate::protocol::{Command, Event};
use engine::Engine;
use link::{post, Incoming};

/// Entry point of the worker's wasm module.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // The module cannot go on after a panic: the page restarts the worker, which restores
        // the saved project.
        post(&Event::Crashed { message: info.to_string() });
    }));
    let engine = Rc::new(Engine::default());
    let (sender, receiver) = async_channel::unbounded::<Incoming>();
    let on_message = engine.clone();
    link::listen(move |incoming| {
        // Stop must not wait behind queued work: it takes effect at the next training step.
        if matches!(incoming.command, Command::Stop) {
            on_message.stop();
        } else {
            let _ = sender.try_send(incoming);
        }
    });
    post(&Event::Ready);
    spawn_local(async move {
        engine.boot().await;
        while let Ok(incoming) = receiver.recv().await {
            engine.handle(incoming).await;
        }
    });
}
