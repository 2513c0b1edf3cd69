"""The inputs both reference scripts (make_reference.py, make_reference_efficientnet.py) feed
their PyTorch networks: the fixed pattern the Rust parity tests rebuild, and a photo as RGB."""
import math

import torch
from PIL import Image


def fixed_input(n, size):
    # Same formula as the Rust tests: a smooth, non-trivial pattern in roughly [-2, 2].
    x = torch.empty(n, 3, size, size)
    for b in range(n):
        for c in range(3):
            for h in range(size):
                for w in range(size):
                    x[b, c, h, w] = 2.0 * math.sin(0.05 * (h + 1) * (c + 1) + 0.03 * w * (b + 1)) * math.cos(0.02 * (w + b))
    return x


def photo_rgb(path):
    """A photo as RGB, transparency laid on white (as graft decodes it)."""
    img = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img).convert("RGB")
