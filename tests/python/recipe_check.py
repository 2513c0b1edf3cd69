"""Checks a PyTorch DDP run of graft's pytorch-recipe (tests/ecosystem.sh):

    python recipe_check.py OUT_DIR HELDOUT.jsonl

OUT_DIR is train.py's output, HELDOUT.jsonl `graft predict OUT_DIR ... --json` on the held-out
photos (one per class, the class is the photo's folder). Passes when the validation loss fell
over the run, the training loss fell from the first epoch to the last, and graft, loading the
result, predicts the held-out fruit right and at least 3 of the 5 held-out photos.
"""
import json
import pathlib
import sys


def fail(message):
    print(f"recipe check FAILED: {message}")
    sys.exit(1)


out, heldout = pathlib.Path(sys.argv[1]), sys.argv[2]
history = json.loads((out / "history.json").read_text())
start, epochs = history["start"]["val_loss"], history["epochs"]
val = [e["val_loss"] for e in epochs]
train = [e["train_loss"] for e in epochs]
print(f"validation loss {start:.4f} -> {' -> '.join(f'{v:.4f}' for v in val)}; "
      f"training loss {' -> '.join(f'{t:.4f}' for t in train)}")
if not val[-1] < start:
    fail("the validation loss did not fall")
if len(train) > 1 and not train[-1] < train[0]:
    fail("the training loss did not fall")
manifest = json.loads((out / "manifest.json").read_text())
print(f"manifest: created by {manifest['created_by']}")

rows = [json.loads(line) for line in open(heldout) if line.strip()]
right = {}
for row in rows:
    truth = pathlib.Path(row["file"]).parent.name
    best = row["top"][0][0]
    right[truth] = best == truth
    print(f"  held-out {row['file']}: {best} {row['top'][0][1]:.3f} ({'right' if best == truth else 'wrong, ' + truth})")
if not right.get("fruit"):
    fail("the held-out fruit is predicted wrong")
if sum(right.values()) < 3:
    fail(f"only {sum(right.values())} of {len(right)} held-out photos right")
print("recipe check passed")
