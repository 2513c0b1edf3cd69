#!/usr/bin/env bash
# Every test: engine unit/integration tests (native, flex CPU backend), then the web app built
# with trunk and driven in headless Chromium (WebGPU via SwiftShader, or the CPU fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh

echo "== engine tests (cargo test --release)"
cargo test --release --workspace --exclude graft

echo "== web app build (trunk build --release)"
trunk build --release

echo "== browser end-to-end tests"
(cd tests && npm test)
