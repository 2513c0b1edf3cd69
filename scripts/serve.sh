#!/usr/bin/env bash
# Builds the web app and serves it on http://127.0.0.1:8080 (rebuilds on change).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
exec trunk serve --release "$@"
