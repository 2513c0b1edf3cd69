#!/usr/bin/env bash
# Installs everything graft needs on a fresh Debian machine (idempotent: fast when done).
# Nothing is downloaded from outside the Debian, crates.io, PyPI and npm registries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The multi-threaded engine (scripts/build-threads.sh) builds std with atomics: a pinned nightly
# with its std sources (no prebuilt wasm32 std is needed).
if ! rustup run nightly-2026-05-20 rustc --version >/dev/null 2>&1 \
  || ! rustup component list --toolchain nightly-2026-05-20 --installed | grep -q rust-src; then
  echo "setup: rustup toolchain install nightly-2026-05-20 (rust-src)"
  rustup toolchain install nightly-2026-05-20 --profile minimal --component rust-src
fi

# trunk 0.22 needs a newer rustc than this machine's; wasm-bindgen-cli must equal Cargo.lock's.
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  echo "setup: building trunk 0.21.14 (slow, once)"
  t0=$SECONDS
  # trunk's own release profile is fat LTO in one codegen unit at -O3: most of its cold build
  # here. A build tool needs none of it (-O1: 6.4 min instead of 8.6 here); linted builds
  # (GRAFT_LINT) must not lint it. (Without its default features, TLS and the update check: 415 s
  # against 418, measured back to back: its critical path is elsewhere.)
  (unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install --locked trunk --version 0.21.14)
  echo "setup: trunk built in $((SECONDS - t0)) s"
fi
WBG=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WBG" ]; then
  echo "setup: building wasm-bindgen-cli $WBG"
  t0=$SECONDS
  # No --locked: its lockfile pins a yanked crate. -O1: 2.6 min to build instead of 3.4, and the
  # same output from the 54 MB engine in 6.7 s instead of 6.2.
  (unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install wasm-bindgen-cli --version "$WBG")
  echo "setup: wasm-bindgen-cli built in $((SECONDS - t0)) s"
fi

# playwright-core (drives Debian's Chromium) and binaryen@132's wasm-opt (Debian's breaks the output).
if [ ! -x tests/node_modules/.bin/wasm-opt ] || [ ! -d tests/node_modules/playwright-core ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

bash scripts/fetch-weights.sh
t0=$SECONDS
native_build -q
echo "setup: native build (tests, examples, CLI) in $((SECONDS - t0)) s"
if [ ! -s static/weights/mobilenet_v2.safetensors ] || [ weights/mobilenet_v2-b0353104.pth -nt static/weights/mobilenet_v2.safetensors ]; then
  "$GRAFT_CLI_BIN" convert weights/mobilenet_v2-b0353104.pth static/weights/mobilenet_v2.safetensors
fi
# The second backbone: f32 for the CLI and the tests, int8 for the page (downloaded when a
# project first trains on it).
if [ ! -s static/weights/efficientnet_lite0.safetensors ] || [ weights/efficientnet-lite0-57934424.pth -nt static/weights/efficientnet_lite0.safetensors ]; then
  "$GRAFT_CLI_BIN" convert weights/efficientnet-lite0-57934424.pth static/weights/efficientnet_lite0.safetensors
fi
if [ ! -s static/weights/efficientnet_lite0-int8.safetensors ] || [ weights/efficientnet-lite0-57934424.pth -nt static/weights/efficientnet_lite0-int8.safetensors ]; then
  "$GRAFT_CLI_BIN" convert --store int8 weights/efficientnet-lite0-57934424.pth static/weights/efficientnet_lite0-int8.safetensors
fi
# The page's download: the same weights as int8 with per-channel scales, a quarter of the bytes
# (the CLI and the tests read the f32 file; README: what it costs).
if [ ! -s static/weights/mobilenet_v2-int8.safetensors ] || [ weights/mobilenet_v2-b0353104.pth -nt static/weights/mobilenet_v2-int8.safetensors ]; then
  "$GRAFT_CLI_BIN" convert --store int8 weights/mobilenet_v2-b0353104.pth static/weights/mobilenet_v2-int8.safetensors
fi
bash scripts/fetch-photos.sh
# 2,000 generated pictures (crops, flips, colour shifts of the photos) for the large-set test.
if [ ! -f data/large/.done ]; then
  "$CARGO_TARGET_DIR/ci/examples/make_large_set" data/photos data/large 400
  touch data/large/.done
fi
# 16 synthetic 12-megapixel phone photos (EXIF-rotated, ~2.3 MB each) for the phone-photo drop.
if [ ! -f data/phone/.done ]; then
  "$CARGO_TARGET_DIR/ci/examples/make_phone_photos" data/phone 16
  touch data/phone/.done
fi
