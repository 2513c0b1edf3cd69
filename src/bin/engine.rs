//! The engine worker's wasm entry point (trunk builds it as a Web Worker: see index.html).

fn main() {
    graft::run_static_constructors_once();
    graft::worker::start();
}
