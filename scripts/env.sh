# Sourced by the other scripts: one shared cargo target dir (the session's and CI's clones reuse
# each other's builds: cold burn builds take tens of minutes on 2 cores), tools on PATH.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/graft/target}"
# scripts/bin first: its wasm-opt caches results in front of binaryen's (tests/node_modules/.bin).
export PATH="$PWD/scripts/bin:$HOME/.cargo/bin:$PWD/tests/node_modules/.bin:$PATH"
# Mesa's Vulkan driver (wgpu natively, in tests) complains without a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/graft-xdg-$UID}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# Python from PyPI for the ecosystem checks (onnxruntime, onnx, PyTorch): scripts/python-env.sh.
export GRAFT_VENV="${GRAFT_VENV:-$HOME/.cache/graft/venv}"
# The one native build: every crate but the page, with its tests, examples and the `graft` CLI
# (in $CARGO_TARGET_DIR/ci; the `ci` profile of Cargo.toml is release with the GPU code
# generators at opt-level 1). Scripts run those binaries instead of
# `cargo run -p …`: a build of one package resolves other features and compiles the burn stack a
# second time (about ten minutes cold on 2 cores).
native_build() {
  linted cargo test --profile ci --workspace --exclude graft --no-run "$@"
}
# With GRAFT_LINT=1 (scripts/test.sh), graft's own crates are compiled by clippy-driver with every
# warning an error, the way `cargo clippy -- -D warnings` runs it but inside the real builds
# (native and wasm32): a separate `cargo clippy` would check every dependency again (8 minutes of
# a cold run on 2 cores). Dependencies are built by rustc as always, and shared.
linted() {
  if [ "${GRAFT_LINT:-0}" = 1 ]; then
    RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
  else
    "$@"
  fi
}
GRAFT_CLI_BIN="$CARGO_TARGET_DIR/ci/graft"
