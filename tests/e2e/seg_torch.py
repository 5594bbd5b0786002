#!/usr/bin/python3
"""Makes a small synthetic segmentation task, trains a segmentation net on it
with PyTorch and exports it to ONNX, as a user bringing a PyTorch
segmentation model to `slimtrain compress` would.

usage: seg_torch.py OUT_DIR [EPOCHS]

Task: 32x32 RGB images, a noisy two-colour gradient background (class 0) with
one to three shapes of random colour on it: discs (class 1), rectangles
(class 2), triangles (class 3). Shapes decide the class, colours do not. The
one-pixel band where two classes meet is labelled 255 (ignored, as the VOC
boundaries torchvision and PaddleSeg leave out).

Net: conv-BN-ReLU stem (16), two stride-2 conv-BN-ReLU stages (32, 48), a
3x3 stage, bilinear upsampling x4 (align_corners=False, ONNX Resize
linear/half_pixel), concatenation with the stem features, conv-BN-ReLU and a
1x1 classifier: output (N, 4, 32, 32). Exported with torch.onnx.export
(opset 13) in eval mode, the way PyTorch users export (BatchNorm folded into
the convolutions); input "image", output "logits".

Writes OUT_DIR/train.h5 and OUT_DIR/eval.h5 (x: (N, 3, 32, 32) uint8, y:
(N, 32, 32) uint8), OUT_DIR/model.onnx and OUT_DIR/torch.json with the
teacher's mIoU and pixel accuracy on eval.h5 computed by PyTorch the way
slimtrain does (classes absent from both labels and predictions left out of
the mean, 255 ignored).
"""
import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZE, CLASSES, IGNORE = 32, 4, 255
MEAN, STD = 0.5, 0.25  # per channel, on pixels / 255 (the config's Data.mean/std)


def make_set(n, rng):
    """n images (uint8 NCHW) and masks (uint8 NHW)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    x = np.empty((n, 3, SIZE, SIZE), np.uint8)
    y = np.empty((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (np.cos(rng.uniform(0, np.pi)) * xx + np.sin(rng.uniform(0, np.pi)) * yy) / (2 * SIZE) + 0.5
        img = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
        mask = np.zeros((SIZE, SIZE), np.uint8)
        for _ in range(rng.integers(1, 4)):
            cls = int(rng.integers(1, CLASSES))
            cy, cx = rng.uniform(6, SIZE - 6, 2)
            r = rng.uniform(4, 9)
            if cls == 1:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            elif cls == 2:
                h, w = rng.uniform(3, 8, 2)
                inside = (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= w)
            else:  # upright triangle: apex at the top, base at cy + r
                top = cy - r
                inside = (yy >= top) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - top) * 0.6)
            colour = rng.uniform(0, 255, 3)
            img = np.where(inside[None], colour[:, None, None], img)
            mask[inside] = cls
        img += rng.normal(0, 12, img.shape)
        x[i] = np.clip(img, 0, 255).astype(np.uint8)
        # Pixels whose 3x3 neighbourhood holds another class: ignored.
        p = np.pad(mask, 1, mode="edge")
        edge = np.zeros_like(mask, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                edge |= p[1 + dy:1 + dy + SIZE, 1 + dx:1 + dx + SIZE] != mask
        y[i] = np.where(edge, IGNORE, mask)
    return x, y


def cbr(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class SegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 16)
        self.down = nn.Sequential(cbr(16, 32, 2), cbr(32, 48, 2), cbr(48, 48))
        self.fuse = cbr(48 + 16, 32)
        self.head = nn.Conv2d(32, CLASSES, 1)

    def forward(self, x):
        s = self.stem(x)
        d = F.interpolate(self.down(s), scale_factor=4, mode="bilinear", align_corners=False)
        return self.head(self.fuse(torch.cat([d, s], 1)))


def normalise(x):
    return (torch.from_numpy(x).float() / 255.0 - MEAN) / STD


def confusion(pred, y):
    keep = y != IGNORE
    idx = y[keep].astype(np.int64) * CLASSES + pred[keep]
    return np.bincount(idx, minlength=CLASSES * CLASSES).reshape(CLASSES, CLASSES)


def scores(cm):
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    return float(iou.mean()), float(tp.sum() / cm.sum())


def main():
    out = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(7)
    xt, yt = make_set(2048, rng)
    xe, ye = make_set(512, rng)
    for name, x, y in (("train.h5", xt, yt), ("eval.h5", xe, ye)):
        with h5py.File(os.path.join(out, name), "w") as h:
            h.create_dataset("x", data=x)
            h.create_dataset("y", data=y)
    net = SegNet()
    steps = epochs * (len(xt) // 32)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
    xt_t, yt_t = normalise(xt), torch.from_numpy(yt.astype(np.int64))
    g = torch.Generator().manual_seed(1)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for b in range(len(xt) // 32):
            idx = perm[b * 32:(b + 1) * 32]
            xb, yb = xt_t[idx], yt_t[idx]
            if torch.rand(1, generator=g).item() < 0.5:  # horizontal flip
                xb, yb = xb.flip(3), yb.flip(2)
            loss = F.cross_entropy(net(xb), yb, ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{epochs}: loss {total / (len(xt) // 32):.4f}", flush=True)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(normalise(xe[i:i + 128])).argmax(1) for i in range(0, len(xe), 128)])
    miou, acc = scores(confusion(pred.numpy(), ye))
    print(f"PyTorch teacher on eval.h5: mIoU {miou:.4f}, pixel accuracy {acc:.4f}")
    torch.onnx.export(net, normalise(xe[:2]), os.path.join(out, "model.onnx"), opset_version=13,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
    with open(os.path.join(out, "torch.json"), "w") as f:
        json.dump({"miou": miou, "pixel_acc": acc, "epochs": epochs}, f)


if __name__ == "__main__":
    main()
