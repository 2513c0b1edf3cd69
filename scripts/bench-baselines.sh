#!/usr/bin/env bash
# Speed of graft against its baselines, back to back on this machine (absolute figures move between
# machines and runs; compare the ratios of one run). Not part of the tests.
#   graft CLI (flex, every core)            cargo-built `graft bench`
#   graft page (wasm CPU backend, worker)   tests/bench-page.mjs on the built dist/: one thread, then
#                                            the multi-threaded engine (isolated) on 1 and 2 threads
#   TF.js (Teachable Machine's pipeline)    ../shared/bench/tfjs, wasm backend
#   PyTorch CPU                             ../shared/bench/torch_mnv2.py (needs a venv with torch:
#                                            TORCH_PY=/path/to/venv/bin/python)
# usage: bash scripts/bench-baselines.sh   (after scripts/test.sh or a trunk build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out=${BENCH_OUT:-/tmp/graft-bench}
mkdir -p "$out"
shared=$(cd .. && pwd)/shared/bench
if [ -d "$shared" ] && [ ! -d "$out/tfjs/node_modules" ]; then
  cp -r "$shared/." "$out/" && chmod -R u+w "$out"
  (cd "$out/tfjs" && npm install --no-audit --no-fund --loglevel=error >&2)
fi
cargo build --release -q -p graft-cli
echo "== graft CLI (flex)"
"$CARGO_TARGET_DIR/release/graft" bench --backend flex --batches 16 --iters 3 --json | tee "$out/graft-cli.txt" | grep -v '^[{} ]' || true
echo "== graft page (wasm CPU, one thread: not cross-origin isolated)"
(cd tests && node bench-page.mjs 16 3 cpu) | tee "$out/graft-page.json"
for n in 1 2; do
  echo "== graft page (multi-threaded CPU engine, isolated, $n thread(s))"
  (cd tests && GRAFT_ISOLATED=1 GRAFT_THREADS=$n node bench-page.mjs 16 3 cpu) | tee "$out/graft-page-threads$n.json"
done
if [ -d "$out/tfjs" ]; then
  echo "== TF.js wasm (Teachable Machine's pipeline)"
  (cd "$out/tfjs" && QS="b1=5&b16=3&skipft=1" ./run.sh wasm 2>/dev/null) | tee "$out/tfjs.json"
fi
if [ -n "${TORCH_PY:-}" ]; then
  echo "== PyTorch CPU ($(nproc) threads)"
  "$TORCH_PY" "$out/torch_mnv2.py" "$(nproc)" | tee "$out/torch.json"
fi
