#!/usr/bin/env bash
# graft's exports checked by the ecosystem's own tools (run by scripts/test.sh), with Python
# packages from PyPI (scripts/python-env.sh):
#  1. ONNX: a model trained by the CLI on the test photos, exported as ONNX, must pass
#     onnx.checker and give in onnxruntime graft's probabilities (max |dp| <= 1e-4, same top-1)
#     on the very tensors graft classified.
#  2. PyTorch DDP: the same model exported as a pytorch-recipe trains under
#     `torchrun --nproc_per_node=2` (gloo, CPU): the validation loss must fall, and graft must
#     load the result, predict the held-out photos with it and train further from it.
#  3. EfficientNet-Lite0: a Lite0 model trained by the CLI loads strictly into the PyTorch
#     module written from the checkpoint's layout (the recipe's efficientnet_lite0.py) and gives
#     graft's probabilities (max |dp| <= 1e-4, same top-1) on the tensors graft classified; its
#     ONNX export passes the same checks as MobileNetV2's (SAME padding written as pads), and
#     its pytorch-recipe trains under torchrun like MobileNetV2's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/python-env.sh
py="$GRAFT_VENV/bin/python"
graft="$GRAFT_CLI_BIN"
native_build -q

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Runs a command with its output (progress bars included) in a log; prints the summary lines,
# or the log's end when the command fails.
logged() {
  local log="$work/$1.log"
  shift
  "$@" >"$log" 2>&1 || { tr '\r' '\n' <"$log" | tail -n 20; return 1; }
  tr '\r' '\n' <"$log" | grep -aE "^(done in|finished|peak memory)" || true
}
# The photos less the last of each class (held out: never trained on, by graft or PyTorch).
heldout=()
for class_dir in data/photos/*/; do
  class=$(basename "$class_dir")
  mkdir -p "$work/photos/$class"
  mapfile -t files < <(find "$class_dir" -maxdepth 1 -type f | sort)
  for f in "${files[@]:0:${#files[@]}-1}"; do ln -s "$PWD/$f" "$work/photos/$class/"; done
  heldout+=("${files[-1]}")
done

echo "-- a frozen model of the photos (CLI, flex, 2 epochs)"
logged train "$graft" train "$work/photos" --mode frozen --epochs 2 --seed 7 --out "$work/model"

echo "-- ONNX: graft export --format onnx, then onnx.checker and onnxruntime"
"$graft" export "$work/model" "$work/model.onnx" --format onnx
# Every 10th photo of every class: graft's probabilities and the tensors it fed the model.
mapfile -t photos < <(find data/photos -mindepth 2 -type f | sort | awk 'NR % 10 == 1')
"$graft" predict "$work/model" "${photos[@]}" --json --save-inputs "$work/inputs.npy" >"$work/predictions.jsonl"
"$py" tests/python/onnx_check.py "$work/model.onnx" --labels "$work/model/labels.json" \
  --inputs "$work/inputs.npy" --predictions "$work/predictions.jsonl"

echo "-- PyTorch DDP: graft export --format pytorch-recipe, torchrun --nproc_per_node=2 (gloo)"
"$graft" export "$work/model" "$work/recipe" --format pytorch-recipe --data "$work/photos"
(cd "$work/recipe" && OMP_NUM_THREADS=1 "$GRAFT_VENV/bin/torchrun" --nproc_per_node=2 train.py \
  --epochs 2 --workers 1 --out "$work/ddp" 2>&1 | grep -v -e '^W[0-9]' -e 'Warning' -e '^\*\*\*')
"$graft" predict "$work/ddp" "${heldout[@]}" --json >"$work/heldout.jsonl"
"$py" tests/python/recipe_check.py "$work/ddp" "$work/heldout.jsonl"
echo "-- graft train --from the PyTorch result"
logged again "$graft" train "$work/photos" --from "$work/ddp" --epochs 1 --out "$work/again"

echo "-- EfficientNet-Lite0: a frozen model (CLI), loaded strictly into PyTorch"
logged lite0 "$graft" train "$work/photos" --backbone efficientnet_lite0 --mode frozen --epochs 2 --seed 7 --out "$work/lite0"
"$graft" predict "$work/lite0" "${photos[@]}" --json --save-inputs "$work/lite0-inputs.npy" >"$work/lite0-predictions.jsonl"
"$py" tests/python/lite0_check.py "$work/lite0" --inputs "$work/lite0-inputs.npy" --predictions "$work/lite0-predictions.jsonl"
"$graft" export "$work/lite0" "$work/lite0.onnx" --format onnx
"$py" tests/python/onnx_check.py "$work/lite0.onnx" --labels "$work/lite0/labels.json" \
  --inputs "$work/lite0-inputs.npy" --predictions "$work/lite0-predictions.jsonl"
"$graft" export "$work/lite0" "$work/lite0-recipe" --format pytorch-recipe --data "$work/photos"
(cd "$work/lite0-recipe" && OMP_NUM_THREADS=1 "$GRAFT_VENV/bin/torchrun" --nproc_per_node=2 train.py \
  --epochs 2 --workers 1 --out "$work/lite0-ddp" 2>&1 | grep -v -e '^W[0-9]' -e 'Warning' -e '^\*\*\*')
"$graft" predict "$work/lite0-ddp" "${heldout[@]}" --json >"$work/lite0-heldout.jsonl"
"$py" tests/python/recipe_check.py "$work/lite0-ddp" "$work/lite0-heldout.jsonl"
