#!/usr/bin/env bash
# Every test: engine unit/integration tests (native, flex CPU backend), then the web app built
# with trunk and driven in headless Chromium (WebGPU via SwiftShader, or the CPU fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh

echo "== formatting and lints (cargo fmt --check, clippy -D warnings: native and wasm32)"
cargo fmt --all -- --check
cargo clippy --workspace --exclude graft --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p graft -- -D warnings

echo "== engine tests (cargo test --release)"
cargo test --release --workspace --exclude graft

echo "== web app build (trunk build --release)"
trunk build --release

echo "== browser end-to-end tests"
(cd tests && npm test)
