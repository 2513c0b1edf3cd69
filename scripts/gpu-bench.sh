#!/usr/bin/env bash
# Real-GPU figures (issue 14): the native engine on wgpu/Vulkan with graft's kernels and with
# burn's generic ops, side by side in one run, batch 16/32/64, frozen and fine-tune, with kernel
# launches and time by op group; flex on the same machine's cores for the ratio. Not a test:
# tests never depend on a GPU. Made for a session lent a `device` machine (bare, offline, x86-64,
# no Rust): everything it needs is prepared here and carried there.
#
#   here:  bash scripts/gpu-bench.sh prepare
#          (builds the CLI in release with the `gpu` path into .gpu-bench/, copies the weights,
#           downloads the Vulkan loader's .deb into .gl/; both folders are git-ignored locally)
#   there: run tool, carry [".gpu-bench", ".gl"], command: bash scripts/gpu-bench.sh run
#          (figures land in $OUT: gpu.txt with the chip, wgpu.json, flex.json, the log)
#   here, without a GPU: bash scripts/gpu-bench.sh run   (lavapipe; slow, batch 16 only)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-run}
dir=.gpu-bench

case "$what" in
prepare)
  source scripts/env.sh
  [ -f static/weights/mobilenet_v2.safetensors ] || bash scripts/setup.sh >&2
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  for p in /.gpu-bench/ /.gl/; do grep -qx "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"; done
  cargo build --release -q -p graft-cli
  mkdir -p "$dir" .gl
  cp "$CARGO_TARGET_DIR/release/graft" "$dir/graft"
  # What travels to the device machine is limited to 64 MiB: stripped and gzipped, the CLI is
  # ~17 MB (66 MB stripped, 90 MB as built).
  strip "$dir/graft"
  gzip -9 -f "$dir/graft"
  cp static/weights/mobilenet_v2.safetensors "$dir/"
  # The device machine's image has the NVIDIA driver but may lack the Vulkan loader.
  (cd .gl && apt-get download libvulkan1 >/dev/null)
  du -sh "$dir" .gl
  ;;
run)
  out=${OUT:-/tmp/graft-gpu-bench}
  mkdir -p "$out"
  if [ -d .gl ] && ls .gl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/graft-xdg-$UID}
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  bin=/tmp/graft-gpu-bench
  weights=$dir/mobilenet_v2.safetensors
  if [ -f "$dir/graft.gz" ]; then
    gunzip -c "$dir/graft.gz" >"$bin" && chmod +x "$bin"
  else
    source scripts/env.sh
    cargo build --release -q -p graft-cli
    bin=$CARGO_TARGET_DIR/release/graft
    weights=static/weights/mobilenet_v2.safetensors
  fi
  batches=16,32,64 iters=5
  nvidia-smi -L >"$out/gpu.txt" 2>&1 || { echo "no NVIDIA GPU: lavapipe, batch 16" >"$out/gpu.txt"; batches=16 iters=2; }
  nproc >>"$out/gpu.txt"
  cat "$out/gpu.txt"
  {
    echo "== wgpu (Vulkan): graft's kernels and burn's generic ops, batches $batches"
    "$bin" bench --backend wgpu --weights "$weights" --batches "$batches" --iters "$iters" --gpu-path both --profile --json \
      | tee "$out/wgpu.txt"
    echo "== flex ($(nproc) cores), same batches"
    "$bin" bench --backend flex --weights "$weights" --batches "$batches" --iters "$iters" --json | tee "$out/flex.txt"
  } 2>&1 | tee "$out/log.txt"
  ;;
*)
  echo "usage: bash scripts/gpu-bench.sh prepare|run" >&2
  exit 2
  ;;
esac
