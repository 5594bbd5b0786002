#!/usr/bin/python3
"""Train a small CNN with torchvision's ImageFolder, evaluate it, export it to ONNX.

Usage:
    torch_imagefolder_model.py DATA_DIR OUT_PREFIX [--epochs 15] [--seed 0] [--threads 2]

DATA_DIR is the OUT_DIR of tests/data/make_image_sets.py (uses DATA_DIR/imagefolder/
{train,val}) or directly a folder holding train/ and val/ ImageFolder trees.

Why: the reference for slimtrain's ImageFolder evaluation.  slimtrain evaluates
OUT_PREFIX.onnx on DATA_DIR/imagefolder/val with the preprocessing recorded in
OUT_PREFIX.json and must reproduce PyTorch's top-1 (within 0.1 point) - which with a
few hundred images means nearly every prediction must match, i.e. the decode and
resize must match PIL's.

Preprocessing (train and eval alike, exactly torchvision 0.14 on PIL images):
    ImageFolder's loader: PIL open + convert('RGB')  (16-bit PNG -> clamp, RGBA ->
    alpha dropped, CMYK -> PIL's formula, P -> palette lookup)
    Resize(36)        short side -> 36, long side int(36 * long / short) (truncation),
                      PIL BILINEAR (PIL's resize is antialiased when downscaling)
    CenterCrop(32)    offset int(round((W - 32) / 2.0)), int(round((H - 32) / 2.0))
    ToTensor          /255, HWC -> CHW
    Normalize         (x - 0.5) / 0.5 per channel
Training adds a random horizontal flip (on the preprocessed tensors, which are
computed once and kept in memory: the same as a num_workers=0 DataLoader over
ImageFolder with these transforms, only faster).  CPU only, deterministic
(torch.manual_seed, torch.use_deterministic_algorithms, fixed thread count).

Writes:
    OUT_PREFIX.onnx        opset 13, eval mode, input "image" [batch,3,32,32] float32,
                           output "logits" [batch,10]; batch axis dynamic.
    OUT_PREFIX.json        {"top1": percent, "n", "correct", "resize": 36, "crop": 32,
                           "mean", "std", "interp": "bilinear", "classes", ...}
    OUT_PREFIX.preds.tsv   one line per val sample in ImageFolder order (sorted
                           class folders, sorted file names):
                           "relative/path<TAB>label<TAB>pred"
    OUT_PREFIX.logits.f32  float32 row-major [n, 10] logits in the same order
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision import datasets, transforms as T

RESIZE, CROP = 36, 32
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]
        self.features = nn.Sequential(
            *block(3, 16), nn.MaxPool2d(2),                     # 16x16
            *block(16, 32), *block(32, 32), nn.MaxPool2d(2),    # 8x8
            *block(32, 64), nn.MaxPool2d(2),                    # 4x4
            *block(64, 64),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def load(ds):
    """Run an ImageFolder once (num_workers=0) and stack the results."""
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=False, num_workers=0)
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("out_prefix")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    t0 = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)

    root = a.data_dir
    if os.path.isdir(os.path.join(root, "imagefolder", "train")):
        root = os.path.join(root, "imagefolder")
    if not os.path.isdir(os.path.join(root, "train")):
        sys.exit(f"no ImageFolder train/ under {a.data_dir}")
    tf = T.Compose([T.Resize(RESIZE), T.CenterCrop(CROP), T.ToTensor(),
                    T.Normalize(MEAN, STD)])
    train_ds = datasets.ImageFolder(os.path.join(root, "train"), transform=tf)
    val_ds = datasets.ImageFolder(os.path.join(root, "val"), transform=tf)
    assert train_ds.classes == val_ds.classes
    xtr, ytr = load(train_ds)
    t_load = time.time() - t0

    model = SmallCNN(len(train_ds.classes))
    steps = a.epochs * ((len(ytr) + a.batch - 1) // a.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps,
                                                pct_start=0.2)
    g = torch.Generator().manual_seed(a.seed)
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        flip = torch.rand(len(ytr), generator=g) < 0.5
        tot, correct = 0.0, 0
        for i in range(0, len(ytr), a.batch):
            idx = perm[i:i + a.batch]
            x = xtr[idx]
            f = flip[idx]
            x = torch.where(f[:, None, None, None], x.flip(3), x)
            out = model(x)
            loss = F.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            correct += (out.argmax(1) == ytr[idx]).sum().item()
        print(f"epoch {ep + 1}/{a.epochs} loss {tot / len(ytr):.4f} "
              f"train_acc {100.0 * correct / len(ytr):.2f}% ({time.time() - t0:.1f}s)",
              file=sys.stderr)

    # evaluation: torchvision ImageFolder + DataLoader, eval mode, batch 100
    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(val_ds, batch_size=100, shuffle=False,
                                                num_workers=0):
            logits.append(model(x))
            labels.append(y)
    logits, labels = torch.cat(logits), torch.cat(labels)
    pred = logits.argmax(1)
    correct = int((pred == labels).sum())
    n = len(labels)
    top1 = 100.0 * correct / n
    top2 = logits.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).numpy()

    os.makedirs(os.path.dirname(os.path.abspath(a.out_prefix)), exist_ok=True)
    onnx_path = a.out_prefix + ".onnx"
    torch.onnx.export(model, torch.zeros(1, 3, CROP, CROP), onnx_path, opset_version=13,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True,
                      training=torch.onnx.TrainingMode.EVAL)
    logits.numpy().astype(np.float32).tofile(a.out_prefix + ".logits.f32")
    with open(a.out_prefix + ".preds.tsv", "w") as f:
        for (path, lab), p in zip(val_ds.samples, pred.tolist()):
            f.write(f"{os.path.relpath(path, root)}\t{lab}\t{p}\n")
    info = {
        "top1": round(top1, 4), "n": n, "correct": correct,
        "resize": RESIZE, "crop": CROP, "mean": MEAN, "std": STD, "interp": "bilinear",
        "interp_impl": "PIL Image.resize BILINEAR via torchvision 0.14 Resize on PIL "
                       "images (antialiased when downscaling); long side "
                       "int(36*long/short)",
        "center_crop_offset": "int(round((W-32)/2.0))",
        "to_tensor": "x/255",
        "classes": val_ds.classes,
        "val_dir": os.path.join(root, "val"),
        "input": "image", "output": "logits", "opset": 13,
        "logit_margin": {"min": round(float(margin.min()), 5),
                         "n_below_0.05": int((margin < 0.05).sum()),
                         "n_below_0.1": int((margin < 0.1).sum())},
        "train_n": len(ytr), "epochs": a.epochs, "seed": a.seed, "threads": a.threads,
        "preds": a.out_prefix + ".preds.tsv", "logits": a.out_prefix + ".logits.f32",
        "seconds": round(time.time() - t0, 1), "load_seconds": round(t_load, 1),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
    }
    with open(a.out_prefix + ".json", "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: info[k] for k in ("top1", "n", "correct", "seconds")}))


if __name__ == "__main__":
    main()
