#!/usr/bin/env bash
# The Python environment of the ecosystem checks (tests/ecosystem.sh): a venv with the pinned
# packages of tests/python/requirements.txt, from PyPI. Reinstalled only when that file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

req=tests/python/requirements.txt
stamp="$GRAFT_VENV/.graft-requirements"
if [ -x "$GRAFT_VENV/bin/python" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
echo "setup: Python venv $GRAFT_VENV (tests/python/requirements.txt)"
python3 -m venv "$GRAFT_VENV"
"$GRAFT_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
