//! The web app's shared code: the page↔worker [`protocol`] and the engine [`worker`] (the
//! page itself lives in the `graft` binary, `src/main.rs`).

// Neither side may abort on a failed browser call: handle it and say so.
#![warn(clippy::unwrap_used)]

/// The page <-> worker messages (their own crate, `crates/graft-protocol`, tested natively).
pub use graft_protocol as protocol;
pub mod worker;

/// The multi-threaded engine's entry point (scripts/build-threads.sh builds this library with
/// the `threads` feature as a cdylib). Its module is instantiated once per rayon thread;
/// `static/engine-mt/loader.js` starts the thread pool, then calls this once, on the engine
/// worker's own thread.
#[cfg(feature = "threads")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = startEngine)]
pub fn start_engine() {
    run_static_constructors_once();
    worker::start();
}

#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Runs the module's static constructors (cubecl registers its IR dialects with `inventory`)
/// once, at start-up. Without an explicit call, wasm-ld links a binary "command-style" and
/// wraps *every* export — each event handler, timer and promise callback — in a call to
/// `__wasm_call_ctors`: hundreds of milliseconds per message on the page (measured with a CPU
/// profile), which froze it for the duration of every worker message.
/// Safe to call from anywhere, any number of times: a `Once` lets the constructors run only on
/// the first call.
#[allow(unsafe_code)]
pub fn run_static_constructors_once() {
    #[cfg(target_arch = "wasm32")]
    {
        extern "C" {
            fn __wasm_call_ctors();
        }
        static CONSTRUCTORS: std::sync::Once = std::sync::Once::new();
        // SAFETY: a linker-synthesised function without arguments; the `Once` runs it a single
        // time, and every entry point calls this first, before anything reads what the
        // constructors register.
        CONSTRUCTORS.call_once(|| unsafe { __wasm_call_ctors() });
    }
}
