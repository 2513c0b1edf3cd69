"""Writes the small PyTorch checkpoints the .pth reader is tested on (graft-model's
src/pytorch/tests.rs), with torch's own values beside them as JSON.

One state_dict in each container and shape the reader must handle: the ZIP format of
PyTorch >= 1.6 and the legacy format (`_use_new_zipfile_serialization=False`); f32, f16, bf16
and f64 tensors; a transposed (non-contiguous) tensor; two tensors sharing one storage at an
offset; an integer buffer; a state_dict nested under a key.

Run: ~/.cache/graft/venv/bin/python scripts/make_pytorch_fixtures.py
"""
import json
import pathlib

import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/graft-model/tests/data"


def state_dict():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(6, 4, generator=g)
    shared = torch.randn(10, generator=g)
    return {
        "features.0.0.weight": torch.randn(2, 3, 3, 3, generator=g),
        "features.0.1.running_var": torch.rand(2, generator=g).double(),
        "features.0.1.num_batches_tracked": torch.tensor(5, dtype=torch.int64),
        "half.weight": torch.randn(3, 2, generator=g).half(),
        "bf16.weight": torch.randn(5, generator=g).bfloat16(),
        "transposed.weight": base.t(),  # strides (1, 4)
        "view.a": shared[2:6],  # offset 2 into a storage of 10
        "view.b": shared[6:].view(2, 2),
        "scalar": torch.tensor(1.5),
    }


def values(sd):
    return {k: {"shape": list(v.shape), "values": v.float().flatten().tolist()}
            for k, v in sd.items() if v.is_floating_point()}


def main():
    sd = state_dict()
    torch.save(sd, OUT / "tiny_state_dict.pth")
    torch.save({"epoch": 3, "state_dict": sd}, OUT / "tiny_nested_legacy.pth", _use_new_zipfile_serialization=False)
    (OUT / "tiny_state_dict.json").write_text(json.dumps(values(sd), indent=1) + "\n")


if __name__ == "__main__":
    main()
