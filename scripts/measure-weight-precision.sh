#!/usr/bin/env bash
# What a smaller backbone download costs after fine-tuning: the test photos (data/photos) trained by
# the CLI from the f32, the f16 and the int8 weight file (`graft convert --store`), same seeds (same split, same head initialisation,
# same augmentation), frozen and discriminative; prints each run's validation accuracy and loss.
# The seeds' spread is the run-to-run noise the difference is compared with (README, "A lighter
# first load"). Takes ~20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -q -p graft-cli
graft="$CARGO_TARGET_DIR/release/graft"
for store in f16 int8; do
  file=static/weights/mobilenet_v2-$store.safetensors
  [ -s "$file" ] || "$graft" convert --store "$store" weights/mobilenet_v2-b0353104.pth "$file" >/dev/null
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # mode seed weights extra...
  local mode=$1 seed=$2 weights=$3
  shift 3
  "$graft" train data/photos --mode "$mode" --seed "$seed" --weights "static/weights/$weights.safetensors" \
    --json --out "$out/model" "$@" 2>/dev/null | grep '"type":"evaluation"' |
    python3 -c "import json,sys; e=json.load(sys.stdin); print(f'$mode seed $seed $weights: accuracy {e[\"accuracy\"]:.4f} loss {e[\"loss\"]:.4f}')"
}
for seed in 1 2 3 4; do
  for weights in mobilenet_v2 mobilenet_v2-f16 mobilenet_v2-int8; do run frozen "$seed" "$weights" --epochs 10; done
done
for seed in 1 2; do
  for weights in mobilenet_v2 mobilenet_v2-f16 mobilenet_v2-int8; do run discriminative "$seed" "$weights" --epochs 4 --warmup 1; done
done
