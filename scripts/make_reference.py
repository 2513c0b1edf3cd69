"""Reference values for the MobileNetV2 port, from PyTorch + torchvision (PyPI).

Writes crates/graft-model/tests/data/reference.json (logits of the official model on a fixed,
formula-defined input, plus its top-5 on a real photo) and crates/graft-model/src/imagenet_labels.txt.
Run once after `pip install torch torchvision pillow` and scripts/fetch-weights.sh:
    python3 scripts/make_reference.py
"""
import json
import pathlib

import torch
import torchvision

from reference_inputs import fixed_input, photo_rgb

ROOT = pathlib.Path(__file__).resolve().parent.parent
weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
model = torchvision.models.mobilenet_v2()
model.load_state_dict(torch.load(ROOT / "weights/mobilenet_v2-b0353104.pth", map_location="cpu"), strict=True)
model.eval()


def photo_tensor(path):
    img = photo_rgb(path)
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256),
        torchvision.transforms.CenterCrop(224),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    return tf(img).unsqueeze(0)


with torch.no_grad():
    logits = model(fixed_input(2, 224))
    photo = ROOT / "data/photos/fruit/banana.png"
    top5 = model(photo_tensor(photo))[0].topk(5).indices.tolist()

labels = weights.meta["categories"]
out = {
    "input": "x[b,c,h,w] = 2 sin(0.05 (h+1)(c+1) + 0.03 w (b+1)) cos(0.02 (w+b)), shape [2,3,224,224]",
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "logits": [row.tolist() for row in logits],
    "photo": {"file": "data/photos/fruit/banana.png", "top5": top5, "top5_labels": [labels[i] for i in top5]},
}
(ROOT / "crates/graft-model/tests/data/reference.json").write_text(json.dumps(out))
(ROOT / "crates/graft-model/src/imagenet_labels.txt").write_text("\n".join(labels) + "\n")
print("top5 on banana photo:", out["photo"]["top5_labels"])
