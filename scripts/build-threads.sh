#!/usr/bin/env bash
# Builds the multi-threaded CPU engine (the `graft` library with the `threads` feature, as a
# cdylib: its entry point is `graft::start_engine`, called by static/engine-mt/loader.js) into
# $TRUNK_STAGING_DIR/engine-mt (trunk runs this as a post_build hook; see Trunk.toml), or into
# the folder given as $1.
#
# wasm threads need std compiled with atomics, which only a nightly toolchain can do
# (`-Z build-std`); the toolchain is pinned (scripts/setup.sh installs it with rust-src). The
# module has no WebGPU: wgpu's browser types are not `Send` once wasm has atomics, and burn needs
# them to be. GRAFT_THREADS=0 skips it (the page then runs the CPU on one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${1:-${TRUNK_STAGING_DIR:?run from trunk or give an output folder}/engine-mt}"
if [ "${GRAFT_THREADS:-1}" = 0 ]; then
  echo "build-threads: skipped (GRAFT_THREADS=0)" >&2
  exit 0
fi
NIGHTLY=nightly-2026-05-20
# Its own target dir: other rustflags and another std (would otherwise rebuild the main one).
target="${CARGO_TARGET_DIR}-mt"
export RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+simd128 -C link-arg=--shared-memory \
-C link-arg=--max-memory=4294967296 -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls \
-C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base \
--cfg getrandom_backend=\"wasm_js\""
# The nightly has no clippy (and the stable one cannot drive it): this build lints with rustc.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
echo "build-threads: cargo +$NIGHTLY build (engine, threads)" >&2
# A cdylib, not the `engine` bin: this toolchain exports only `main` from a wasm bin, and
# wasm-bindgen's thread support needs the library's exports (`__wbindgen_malloc`…).
# `-D warnings` lints this build's own code (clippy runs on the WebGPU build; rustc's lints here
# catch what only this configuration compiles, at no extra cost).
CARGO_TARGET_DIR="$target" rustup run "$NIGHTLY" cargo rustc --release --target wasm32-unknown-unknown \
  --lib --crate-type cdylib --no-default-features --features threads -Z build-std=panic_abort,std -- -D warnings
# trunk stages into a fresh folder each build; assemble aside, then move in.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wasm-bindgen --target web --no-typescript --out-dir "$tmp" --out-name engine \
  "$target/wasm32-unknown-unknown/release/graft.wasm"
# -O1 as in index.html: a module that compresses better than -Oz's, in a quarter of the time.
wasm-opt -O1 --enable-threads --enable-bulk-memory --enable-simd "$tmp/engine_bg.wasm" --output="$tmp/engine_bg.opt.wasm"
mv "$tmp/engine_bg.opt.wasm" "$tmp/engine_bg.wasm"
cp static/engine-mt/loader.js "$tmp/"
mkdir -p "$out"
cp -r "$tmp/." "$out/"
echo "build-threads: $(du -h "$out/engine_bg.wasm" | cut -f1) engine_bg.wasm in $out" >&2
