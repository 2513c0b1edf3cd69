#!/usr/bin/env bash
# graft's exports checked by the ecosystem's own tools (run by scripts/test.sh): a model trained
# by the CLI on the test photos is exported as ONNX and run in onnxruntime (from PyPI) on the
# very tensors graft classified; onnx.checker must accept the file.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/python-env.sh
py="$GRAFT_VENV/bin/python"
graft="$CARGO_TARGET_DIR/release/graft"
cargo build --release -q -p graft-cli

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "-- a frozen model of the test photos (CLI, flex)"
"$graft" train data/photos --mode frozen --epochs 3 --seed 7 --out "$work/model" >"$work/train.log"
grep -aE "^(done in|finished|peak memory)" "$work/train.log"

echo "-- ONNX: graft export --format onnx, then onnx.checker and onnxruntime"
"$graft" export "$work/model" "$work/model.onnx" --format onnx
# Every 10th photo of every class: graft's probabilities and the tensors it fed the model.
mapfile -t photos < <(find data/photos -mindepth 2 -type f | sort | awk 'NR % 10 == 1')
"$graft" predict "$work/model" "${photos[@]}" --json --save-inputs "$work/inputs.npy" >"$work/predictions.jsonl"
"$py" tests/python/onnx_check.py "$work/model.onnx" --labels "$work/model/labels.json" \
  --inputs "$work/inputs.npy" --predictions "$work/predictions.jsonl"
