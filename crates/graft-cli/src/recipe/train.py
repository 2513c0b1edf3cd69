#!/usr/bin/env python3
"""Continue a graft model's training with PyTorch DistributedDataParallel (written by
`graft export MODEL_DIR OUT_DIR --format pytorch-recipe`; see README.md next to this file).

Rebuilds the same model (torchvision MobileNetV2, or EfficientNet-Lite0 from efficientnet_lite0.py
next to this file; the 1000-class head replaced by the graft head),
starts from graft's exported weights (start/), trains the same way graft does (frozen backbone,
or discriminative learning rates with per-layer groups after a head-only warm-up; one-cycle
schedule; AdamW; label smoothing; BatchNorm always on its running statistics) on data/train,
validates on data/val (graft's own split), and writes a graft export directory
(model.safetensors, labels.json, manifest.json) that `graft predict DIR` and
`graft train --from DIR` read.

    torchrun --nproc_per_node=N train.py --epochs 5 --out out   # NCCL on GPUs, gloo on CPUs
"""
import argparse
import copy
import json
import math
import os
import pathlib
import struct
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torchvision
from PIL import Image
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import transforms

HERE = pathlib.Path(__file__).resolve().parent


# ---- safetensors (tiny reader/writer: the format is an 8-byte length, a JSON header, raw data)
def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: only F32 tensors are expected, found {info['dtype']}")
        begin, end = info["data_offsets"]
        data = bytearray(raw[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(data, dtype=torch.float32).reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        blob = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- data: data/<split>/<class>/<picture>, classes in graft's (logit) order
def load_rgb(path):
    image = Image.open(path)
    image.load()
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)  # graft flattens transparency onto white
    return image.convert("RGB")


class Pictures(Dataset):
    def __init__(self, root, classes, transform):
        self.items = [
            (p, label)
            for label, name in enumerate(classes)
            for p in sorted((root / name).glob("*"))
            if p.is_file() and not p.name.startswith(".")
        ]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return self.transform(load_rgb(path)), label


def transforms_for(recipe):
    norm = transforms.Normalize(recipe["normalization"]["mean"], recipe["normalization"]["std"])
    size, side = recipe["input_size"], recipe["resize_side"]
    prepare = transforms.Resize(side, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True)
    evaluate = transforms.Compose([prepare, transforms.CenterCrop(size), transforms.ToTensor(), norm])
    aug = recipe["train"].get("augment")
    if not aug:
        return evaluate, evaluate
    steps = [prepare, transforms.RandomResizedCrop(size, scale=(aug["min_scale"], 1.0), ratio=(3 / 4, 4 / 3))]
    if aug["flip"]:
        steps.append(transforms.RandomHorizontalFlip())
    if aug["jitter"] > 0:
        j = aug["jitter"]
        steps.append(transforms.ColorJitter(brightness=j, contrast=j, saturation=j))
    return transforms.Compose(steps + [transforms.ToTensor(), norm]), evaluate


# ---- the model: the manifest's backbone with graft's head
class Net:
    """The model and its parts as this script uses them, whichever the backbone."""

    def __init__(self, model, layers, head, features):
        self.model = model  # the whole classifier (its state_dict is the export)
        self.layers = layers  # the backbone's layers in network order (graft's learning-rate groups)
        self.head = head  # the classifier head, one module
        self.features = features  # x -> the backbone's feature maps

    def backbone_trainable(self, on):
        for layer in self.layers:
            layer.requires_grad_(on)

    def backbone_eval(self):
        for layer in self.layers:
            layer.eval()


def build_model(manifest, weights):
    n = len(manifest["classes"])
    stacked = manifest["head"]["kind"] == "stacked"
    architecture = manifest.get("architecture", "mobilenet_v2")
    if architecture == "mobilenet_v2":
        model = torchvision.models.mobilenet_v2(weights=None)
        if stacked:
            # The teaching experiment: the ImageNet classifier kept (frozen), a layer on its logits.
            model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000), nn.Linear(1000, n))
            model.classifier[1].requires_grad_(False)
        else:
            model.classifier[1] = nn.Linear(1280, n)  # the head replaced, never stacked
        net = Net(model, list(model.features), model.classifier, model.features)
    elif architecture == "efficientnet_lite0":
        from efficientnet_lite0 import EfficientNetLite0

        model = EfficientNetLite0(classes=1000 if stacked else n, stacked=n if stacked else None)
        if stacked:
            model._fc.requires_grad_(False)
        net = Net(model, model.layers(), model.classifier(), model.features)
    else:
        raise SystemExit(f"this recipe has no {architecture} (it knows mobilenet_v2 and efficientnet_lite0)")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"start/model.safetensors does not fit: missing {missing}, unexpected {unexpected}")
    return net


def batchnorm_inference(model):
    # graft normalises with the ImageNet running statistics in every mode (γ/β still learn).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def one_cycle(step, total):
    # graft's schedule: linear warm-up from a tenth of the peak, then cosine down to a hundredth.
    total = max(total, 1)
    warm = max(round(total * 0.1), min(total // 3, 3), 1)
    if step < warm:
        return 0.1 + 0.9 * (step + 1) / warm
    t = min((step - warm) / max(total - warm, 1), 1.0)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))


def layer_factor(cfg, index, count):
    if not cfg["layer_groups"] or count < 2:
        return cfg["backbone_ratio"]
    return cfg["backbone_ratio"] * 10 ** (index / (count - 1) - 1)


def parameter_groups(net, cfg):
    groups = [{"params": [p for p in net.head.parameters() if p.requires_grad], "factor": 1.0, "name": "head"}]
    if cfg["mode"] == "discriminative":
        count = len(net.layers)
        for i, layer in enumerate(net.layers):
            groups.append({"params": list(layer.parameters()), "factor": layer_factor(cfg, i, count), "name": f"layer {i}"})
    return groups


def evaluate(model, loader, device, loss_fn):
    model.eval()
    total, correct, loss = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss += float(loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
    return (loss / total, correct / total) if total else (float("nan"), float("nan"))


def main():
    recipe = json.loads((HERE / "recipe.json").read_text())
    cfg = dict(recipe["train"])
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--epochs", type=int, default=cfg["epochs"])
    cli.add_argument("--out", required=True, help="directory for the graft export")
    cli.add_argument("--mode", choices=["frozen", "discriminative"], default=cfg["mode"])
    cli.add_argument("--lr", type=float, default=cfg["lr"], help="peak learning rate of the head")
    cli.add_argument("--batch-size", type=int, default=cfg["batch_size"], help="global batch (split over processes)")
    cli.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    args = cli.parse_args()
    cfg.update(epochs=args.epochs, mode=args.mode, lr=args.lr, batch_size=args.batch_size)

    cuda = torch.cuda.is_available()
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(cfg["seed"] + rank)
    say = print if rank == 0 else (lambda *a, **k: None)

    manifest = json.loads((HERE / "start" / "manifest.json").read_text())
    net = build_model(manifest, read_safetensors(HERE / "start" / "model.safetensors"))
    model = net.model.to(device)
    train_tf, eval_tf = transforms_for(recipe)
    train_set = Pictures(HERE / "data" / "train", manifest["classes"], train_tf)
    val_set = Pictures(HERE / "data" / "val", manifest["classes"], eval_tf)
    per_process = max(1, cfg["batch_size"] // world)
    sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg["seed"]) if distributed else None
    train_loader = DataLoader(train_set, per_process, sampler=sampler, shuffle=sampler is None,
                              num_workers=args.workers, drop_last=False, persistent_workers=args.workers > 0)
    val_loader = DataLoader(val_set, 32, num_workers=args.workers)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])

    if cfg["mode"] == "frozen":
        net.backbone_trainable(False)
    groups = parameter_groups(net, cfg)
    optimizer = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-5,
                                  weight_decay=cfg["weight_decay"])
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * cfg["epochs"]
    warmup = cfg["warmup_epochs"] if cfg["mode"] == "discriminative" else 0
    say(f"{len(train_set)} training and {len(val_set)} validation pictures, {len(manifest['classes'])} classes; "
        f"{world} process(es) on {device.type} ({'nccl' if cuda else 'gloo' if distributed else 'single'}), "
        f"batch {per_process} per process; mode {cfg['mode']}, {cfg['epochs']} epochs, head lr {cfg['lr']:g}")

    val_loss, val_acc = evaluate(model, val_loader, device, loss_fn)
    history = {"start": {"val_loss": val_loss, "val_accuracy": val_acc}, "epochs": []}
    say(f"start: val loss {val_loss:.4f} acc {val_acc:.3f}")
    step, t_start = 0, time.time()
    head_ddp, full_ddp = None, None
    for epoch in range(cfg["epochs"]):
        fine_tune = cfg["mode"] == "discriminative" and epoch >= warmup
        # The frozen backbone (frozen mode, and the warm-up) runs without gradients, outside
        # DDP: only the head's gradients are averaged across processes.
        if fine_tune and full_ddp is None:
            net.backbone_trainable(True)
            full_ddp = DistributedDataParallel(model) if distributed else model
            say("fine-tuning: the backbone learns too")
        elif not fine_tune and head_ddp is None:
            head_ddp = DistributedDataParallel(net.head) if distributed else net.head
        if sampler:
            sampler.set_epoch(epoch)
        model.train()
        batchnorm_inference(model)
        if not fine_tune:
            net.backbone_eval()
        seen, loss_sum, t0 = 0, 0.0, time.time()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            factor = one_cycle(step, total_steps)
            for g in optimizer.param_groups:
                g["lr"] = cfg["lr"] * factor * g["factor"]
            if fine_tune:
                logits = full_ddp(x)
            else:
                with torch.no_grad():
                    features = nn.functional.adaptive_avg_pool2d(net.features(x), 1).flatten(1)
                logits = head_ddp(features)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"the loss became {value} at epoch {epoch + 1} step {step + 1}: lower the learning rate")
            seen += len(y)
            loss_sum += value * len(y)
            step += 1
        totals = torch.tensor([loss_sum, seen], dtype=torch.float64)
        if distributed:
            dist.all_reduce(totals)
        train_loss = float(totals[0] / totals[1])
        val_loss, val_acc = evaluate(model, val_loader, device, loss_fn)
        seconds = time.time() - t0
        history["epochs"].append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                                  "val_accuracy": val_acc, "seconds": seconds,
                                  "images_per_sec": float(totals[1]) / seconds})
        say(f"epoch {epoch + 1}/{cfg['epochs']}: train loss {train_loss:.4f}, val loss {val_loss:.4f} "
            f"acc {val_acc:.3f}, {float(totals[1]) / seconds:.1f} img/s")

    if rank == 0:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        write_safetensors(out / "model.safetensors", state, {"format": "pt", "graft_format": manifest["format"]})
        result = copy.deepcopy(manifest)
        result["training"] = {**(manifest.get("training") or recipe["train"]), **{k: cfg[k] for k in ("mode", "epochs", "lr", "batch_size")}}
        result["metrics"] = None  # graft's metrics are its own runs'; this run's are in history.json
        result["created_by"] = f"graft pytorch-recipe (torch {torch.__version__}, {world} process(es), {device.type})"
        (out / "manifest.json").write_text(json.dumps(result, indent=2))
        (out / "labels.json").write_text(json.dumps(manifest["classes"], indent=2))
        history["seconds"] = time.time() - t_start
        (out / "history.json").write_text(json.dumps(history, indent=2))
        say(f"wrote {out} (graft predict {out} PICTURE...)")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
