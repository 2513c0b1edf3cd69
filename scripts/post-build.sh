#!/usr/bin/env bash
# trunk's post_build hook (Trunk.toml): the multi-threaded CPU engine into the staging dir, the
# service worker that keeps the page working offline (scripts/make-sw.mjs: it lists what was
# staged), then the .br/.gz twins of everything staged (scripts/precompress.mjs), in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-threads.sh
node scripts/make-sw.mjs static/sw.js "${TRUNK_STAGING_DIR:?run from trunk}"
node scripts/precompress.mjs "${TRUNK_STAGING_DIR:?run from trunk}"
