// The multi-threaded CPU engine (built by scripts/build-threads.sh). It is a module worker
// because wasm-bindgen-rayon starts its thread pool as module workers that import engine.js
// and share this module's memory. `?threads=N` overrides the thread count (the benchmark
// measures 1 vs 2 with it).
import init, { initThreadPool, startEngine } from './engine.js';

// The app's files (the backbone's weights) are one folder up.
self.GRAFT_APP_ROOT = new URL('../', import.meta.url).href;
const asked = Number(new URL(self.location.href).searchParams.get('threads'));
const threads = asked > 0 ? asked : Math.min(navigator.hardwareConcurrency || 1, 16);
await init();
await initThreadPool(threads);
startEngine();
