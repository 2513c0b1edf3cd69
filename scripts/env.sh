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
