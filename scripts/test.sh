#!/usr/bin/env bash
# Every test: engine unit/integration tests (native, flex CPU backend), the exports checked by
# the ecosystem's tools (tests/ecosystem.sh), then the web app built with trunk and driven in
# headless Chromium (WebGPU via SwiftShader, or the CPU fallback).
# Each phase's duration is printed at the end (and when a phase fails), to keep CI inside its limit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

phases=()
phase_start=$SECONDS
phase_name=""
# Ends the running phase (recording its duration) and starts `$1`.
phase() {
  if [ -n "$phase_name" ]; then phases+=("$(printf '%5d s  %s' $((SECONDS - phase_start)) "$phase_name")"); fi
  phase_name="$1"
  phase_start=$SECONDS
  [ -n "$phase_name" ] && echo "== $phase_name"
  return 0
}
report() {
  local rc=$?
  if [ -n "$phase_name" ]; then phases+=("$(printf '%5d s  %s%s' $((SECONDS - phase_start)) "$phase_name" "$([ $rc -ne 0 ] && echo ' (failed)')")"); fi
  echo "== phase timings"
  printf '%s\n' "${phases[@]}"
  printf '%5d s  total\n' "$SECONDS"
}
# The background Python venv install (below) ends with the run.
venv_pid=""
trap 'report; [ -z "$venv_pid" ] || kill "$venv_pid" 2>/dev/null || true' EXIT

# Clippy (-D warnings) runs inside the native and wasm32 builds below (`linted`, scripts/env.sh).
export GRAFT_LINT=1

phase "formatting (cargo fmt --check)"
cargo fmt --all -- --check

# The ecosystem checks' Python venv (torch: about 5 GB from PyPI on a new machine) installs beside
# setup: mostly download and unpacking, while setup's builds keep the cores.
venv_log="$(mktemp)"
bash scripts/python-env.sh >"$venv_log" 2>&1 &
venv_pid=$!

phase "setup (scripts/setup.sh), with the native build linted by clippy"
bash scripts/setup.sh

phase "engine tests (cargo test --profile ci)"
# setup.sh built them (native_build in scripts/env.sh); the same command reuses that build.
linted cargo test --profile ci --workspace --exclude graft

phase "ecosystem checks (tests/ecosystem.sh: ONNX in onnxruntime and onnx.checker)"
wait "$venv_pid" || { cat "$venv_log"; echo "the Python venv could not be installed" >&2; exit 1; }
venv_pid=""
cat "$venv_log"
bash tests/ecosystem.sh

phase "web app build (trunk build --release), linted by clippy"
# Without wasm-opt (scripts/bin/wasm-opt): it ran ~4 of this phase's minutes on one core, and
# modules ran at the same speed without it (README). `serve` keeps it: smaller downloads.
GRAFT_WASM_OPT_SKIP=1 linted trunk build --release

phase "browser end-to-end tests"
rm -f tests/artifacts/graft-model.onnx
# The browser test trains a project saved by the page with the CLI (step 8b): the CLI that
# setup.sh built.
(cd tests && GRAFT_CLI="$GRAFT_CLI_BIN" npm test)

phase "the page's ONNX download in onnx.checker"
"$GRAFT_VENV/bin/python" tests/python/onnx_check.py tests/artifacts/graft-model.onnx \
  --labels tests/artifacts/graft-model-labels.json
phase ""
