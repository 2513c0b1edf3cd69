#!/usr/bin/env bash
# trunk's post_build hook (Trunk.toml): the multi-threaded CPU engine into the staging dir (built
# here, or waited for where scripts/test.sh builds it beside trunk: GRAFT_THREADS_PREBUILT), the
# service worker that keeps the page working offline (scripts/make-sw.mjs: it lists what was
# staged), then the .br/.gz twins of everything staged (scripts/precompress.mjs), in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${GRAFT_THREADS_PREBUILT:-}" ]; then
  # scripts/test.sh builds it beside trunk's own modules: wait for it, then stage it.
  while [ ! -f "$GRAFT_THREADS_PREBUILT/rc" ]; do sleep 1; done
  cat "$GRAFT_THREADS_PREBUILT/log" >&2
  [ "$(cat "$GRAFT_THREADS_PREBUILT/rc")" = 0 ] || { echo "post-build: the multi-threaded engine failed to build" >&2; exit 1; }
  # (GRAFT_THREADS=0 builds nothing.)
  if [ -d "$GRAFT_THREADS_PREBUILT/engine-mt" ]; then
    cp -r "$GRAFT_THREADS_PREBUILT/engine-mt" "${TRUNK_STAGING_DIR:?run from trunk}/engine-mt"
  fi
else
  bash scripts/build-threads.sh
fi
node scripts/make-sw.mjs static/sw.js "${TRUNK_STAGING_DIR:?run from trunk}"
node scripts/precompress.mjs "${TRUNK_STAGING_DIR:?run from trunk}"
