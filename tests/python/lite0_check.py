"""Checks a graft EfficientNet-Lite0 export in PyTorch: its model.safetensors must load strictly
into the EfficientNet-Lite0 module written from the checkpoint's layout
(crates/graft-cli/src/recipe/efficientnet_lite0.py, with `_fc` sized to the classes), and give graft's
probabilities on the very tensors graft classified (from `graft predict --json --save-inputs`).

    python lite0_check.py MODEL_DIR --inputs INPUTS.npy --predictions PREDICTIONS.jsonl

Passes when max |delta p| <= 1e-4 and the top-1 agrees on every picture.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "crates/graft-cli/src/recipe"))
from efficientnet_lite0 import EfficientNetLite0  # noqa: E402

TOLERANCE = 1e-4


def load_safetensors(path):
    """The f32 tensors of a safetensors file (8-byte header length, JSON header, raw data)."""
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            fail(f"{name} is {info['dtype']}, graft exports f32")
        start, end = info["data_offsets"]
        values = np.frombuffer(raw, dtype="<f4", count=(end - start) // 4, offset=8 + n + start)
        out[name] = torch.from_numpy(values.reshape(info["shape"]).copy())
    return out


def fail(message):
    print(f"EfficientNet-Lite0 check FAILED: {message}")
    sys.exit(1)


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("model_dir")
    cli.add_argument("--inputs", required=True)
    cli.add_argument("--predictions", required=True)
    args = cli.parse_args()
    model_dir = pathlib.Path(args.model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    if manifest["architecture"] != "efficientnet_lite0":
        fail(f"the manifest names {manifest['architecture']}")
    classes = manifest["classes"]
    state = load_safetensors(model_dir / "model.safetensors")
    model = EfficientNetLite0(classes=len(classes))
    model.load_state_dict(state, strict=True)
    model.eval()
    inputs = torch.from_numpy(np.load(args.inputs))
    graft = [json.loads(line) for line in open(args.predictions) if line.strip()]
    graft = [g for g in graft if "probabilities" in g]
    if len(graft) != inputs.shape[0] or len(graft) == 0:
        fail(f"{inputs.shape[0]} input tensors for {len(graft)} graft predictions")
    with torch.no_grad():
        probs = torch.softmax(model(inputs), 1).numpy()
    expected = np.array([g["probabilities"] for g in graft], dtype=np.float32)
    worst = float(np.abs(probs - expected).max())
    agree = int((probs.argmax(1) == expected.argmax(1)).sum())
    print(f"PyTorch (strict load of {len(state)} tensors) on {len(graft)} pictures: "
          f"max |dp| vs graft {worst:.2e}; top-1 agrees on {agree}/{len(graft)}")
    if worst > TOLERANCE:
        fail(f"max |dp| {worst:.2e} > {TOLERANCE}")
    if agree != len(graft):
        fail("top-1 differs")


if __name__ == "__main__":
    main()
