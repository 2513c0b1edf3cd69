"""Checks a graft ONNX export with independent tools: onnx.checker, then onnxruntime on the very
tensors graft classified (from `graft predict --json --save-inputs`).

    python onnx_check.py MODEL.onnx --labels LABELS.json [--inputs INPUTS.npy --predictions PREDICTIONS.jsonl]

Passes when the model is valid ONNX (opset >= 17, batch dimension free), names the classes of
labels.json, and (given graft's inputs and predictions) gives every picture graft's top-1 with
max |delta p| <= 1e-4.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4


def fail(message):
    print(f"onnx check FAILED: {message}")
    sys.exit(1)


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("model")
    cli.add_argument("--labels", required=True)
    cli.add_argument("--inputs")
    cli.add_argument("--predictions")
    args = cli.parse_args()
    path = args.model
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 17:
        fail(f"opset {opset} < 17")
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["classes"])
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    if batch.dim_param == "" or batch.dim_value != 0:
        fail("the batch dimension is fixed")
    print(f"{path}: onnx.checker accepts it; opset {opset}; {len(model.graph.node)} nodes; classes {classes}")
    labels = json.load(open(args.labels))
    if classes != labels:
        fail(f"metadata classes {classes} != labels.json {labels}")
    if not args.inputs:
        return
    inputs = np.load(args.inputs)
    graft = [json.loads(line) for line in open(args.predictions) if line.strip()]
    graft = [g for g in graft if "probabilities" in g]
    if len(graft) != inputs.shape[0] or len(graft) == 0:
        fail(f"{inputs.shape[0]} input tensors for {len(graft)} graft predictions")

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits, probs = session.run(["logits", "probabilities"], {"input": inputs})
    expected = np.array([g["probabilities"] for g in graft], dtype=np.float32)
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    worst = float(np.abs(probs - expected).max())
    top1_ort, top1_graft = probs.argmax(1), expected.argmax(1)
    # One picture alone must give the same as in the batch (the batch really is free).
    single = session.run(["probabilities"], {"input": inputs[:1]})[0]
    print(f"onnxruntime on {len(graft)} pictures: max |dp| vs graft {worst:.2e}; "
          f"top-1 agrees on {int((top1_ort == top1_graft).sum())}/{len(graft)}")
    if worst > TOLERANCE:
        fail(f"max |dp| {worst:.2e} > {TOLERANCE}")
    if not (top1_ort == top1_graft).all():
        bad = [graft[i]["file"] for i in np.nonzero(top1_ort != top1_graft)[0]]
        fail(f"different top-1 on {bad}")
    if float(np.abs(softmax - probs).max()) > 1e-6 or float(np.abs(single - probs[:1]).max()) > 1e-5:
        fail("the probabilities output is not the logits' softmax, or batch 1 differs")
    print("onnx check passed")


if __name__ == "__main__":
    main()
