#!/usr/bin/python3
"""Write ImageNet-like JPEGs for the data-pipeline benchmark (slimtrain vs torchvision).

Usage:
    make_bench_images.py OUT_DIR [--n 256] [--list-lines 10000,1000000] [--seed 0]
                                 [--noise 5.0] [--detail 48] [--fmnist DIR]

Why: decoding + augmentation cost depends on pixel count and JPEG entropy, so the
bench needs files shaped like ImageNet photos (500x375, quality 90, baseline, 4:2:0,
~100-150 KB) rather than flat synthetic images that decode unrealistically fast.
Content: a smooth colour gradient, 1/f^0.7 "natural image" texture in luma (std
--detail x U(0.7,1.3) grey levels) and weaker in chroma, 1-3 Fashion-MNIST items
upscaled to 150-330 px, tinted and textured, composited on top, plus mild Gaussian
sensor noise (--noise sigma).  --detail is the main knob for file size: the default
gives ~120 KB mean (89-147 KB) at 500x375 q90.  Deterministic per --seed.

Writes:
  OUT_DIR/train/<k>_<name>/bench_<nnnnn>.jpg   N images; every 8th image (i % 8 == 7)
        is portrait 375x500, the rest landscape 500x375.  The label is the class of
        the item with the largest visible rectangle; folders 0_tshirt .. 9_ankle_boot
        sort in label order, so OUT_DIR/train is directly a torchvision ImageFolder root.
  OUT_DIR/list_<L>.txt   for each L in --list-lines: L lines "train/<k>_<name>/bench_<nnnnn>.jpg <k>"
        (ACT format, relative to OUT_DIR) cycling through the N files in order.
  OUT_DIR/train_list.txt, OUT_DIR/val_list.txt   the N files once each (ACT data_dir).
  OUT_DIR/bench_images.json   n, sizes, mean/min/max bytes, seed, noise.
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import time

import numpy as np
from PIL import Image

CLASS_NAMES = ["0_tshirt", "1_trouser", "2_pullover", "3_dress", "4_coat",
               "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def smooth_field(rng, w, h, gw, gh, channels, lo, hi):
    """Random gw x gh grid upscaled bicubically to w x h: float32 (h, w, channels)."""
    out = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        g = rng.uniform(lo, hi, (gh, gw)).astype(np.float32)
        out[..., c] = np.asarray(Image.fromarray(g, "F").resize((w, h), Image.BICUBIC))
    return out


def pink_noise(rng, w, h, std):
    """1/f ("natural image") noise field, float32 (h, w), zero mean, given std."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** 0.7
    spec[0, 0] = 0
    field = np.fft.irfft2(spec, s=(h, w))
    return (field * (std / field.std())).astype(np.float32)


def make_image(rng, xs, ys, w, h, noise, detail):
    img = smooth_field(rng, w, h, 4, 3, 3, 20, 235)                 # colour gradient
    detail *= rng.uniform(0.7, 1.3)                                  # per-image busyness
    img += pink_noise(rng, w, h, detail)[..., None]                  # luma texture
    img += np.stack([pink_noise(rng, w, h, detail / 3) for _ in range(3)], -1)
    n_items = int(rng.integers(1, 4))
    best, label = 0, 0
    for _ in range(n_items):
        j = int(rng.integers(0, len(ys)))
        s = int(rng.integers(150, 331))
        sw = int(s * rng.uniform(0.8, 1.25))
        m = np.asarray(Image.fromarray(xs[j], "L").resize((sw, s), Image.BICUBIC),
                       np.float32)[..., None] / 255.0
        x0 = int(rng.integers(-sw // 4, max(w - 3 * sw // 4, 1)))
        y0 = int(rng.integers(-s // 4, max(h - 3 * s // 4, 1)))
        tint = rng.uniform(30, 255, 3).astype(np.float32)
        tex = 1.0 + smooth_field(rng, sw, s, sw // 6, s // 6, 1, -0.25, 0.25)
        item = tint * tex * (0.55 + 0.45 * m)
        # clip the item rectangle to the canvas
        ax0, ay0 = max(x0, 0), max(y0, 0)
        ax1, ay1 = min(x0 + sw, w), min(y0 + s, h)
        if ax1 <= ax0 or ay1 <= ay0:
            continue
        sl = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
        if (ax1 - ax0) * (ay1 - ay0) > best:          # label = largest visible item
            best, label = (ax1 - ax0) * (ay1 - ay0), int(ys[j])
        a = np.clip(m[sl] * 1.6, 0, 1)
        img[ay0:ay1, ax0:ax1] = img[ay0:ay1, ax0:ax1] * (1 - a) + item[sl] * a
    img += rng.normal(0, noise, img.shape).astype(np.float32)        # sensor noise
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB"), label


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--list-lines", default="10000,1000000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=5.0)
    ap.add_argument("--detail", type=float, default=48.0)
    ap.add_argument("--fmnist", default=FMNIST_DIR)
    a = ap.parse_args()
    t0 = time.time()
    out = a.out_dir
    shutil.rmtree(os.path.join(out, "train"), ignore_errors=True)
    for k in CLASS_NAMES:
        os.makedirs(os.path.join(out, "train", k), exist_ok=True)
    xs = read_idx_gz(os.path.join(a.fmnist, "train-images-idx3-ubyte.gz"))
    ys = read_idx_gz(os.path.join(a.fmnist, "train-labels-idx1-ubyte.gz"))

    lines, sizes, shapes = [], [], {}
    for i in range(a.n):
        rng = np.random.default_rng([a.seed, i])
        w, h = (375, 500) if i % 8 == 7 else (500, 375)
        img, label = make_image(rng, xs, ys, w, h, a.noise, a.detail)
        rel = f"train/{CLASS_NAMES[label]}/bench_{i:05d}.jpg"
        p = os.path.join(out, rel)
        img.save(p, format="JPEG", quality=90, subsampling=2, progressive=False,
                 optimize=False)
        sizes.append(os.path.getsize(p))
        shapes[f"{w}x{h}"] = shapes.get(f"{w}x{h}", 0) + 1
        lines.append(f"{rel} {label}\n")

    for name in ("train_list.txt", "val_list.txt"):
        with open(os.path.join(out, name), "w") as f:
            f.writelines(lines)
    for L in [int(s) for s in a.list_lines.split(",") if s.strip()]:
        with open(os.path.join(out, f"list_{L}.txt"), "w") as f:
            full, rest = divmod(L, len(lines))
            block = "".join(lines)
            for _ in range(full):
                f.write(block)
            f.writelines(lines[:rest])
    sz = np.array(sizes)
    info = {"n": a.n, "seed": a.seed, "noise": a.noise, "detail": a.detail, "quality": 90,
            "subsampling": "4:2:0", "shapes": shapes,
            "mean_bytes": int(sz.mean()), "min_bytes": int(sz.min()),
            "max_bytes": int(sz.max()),
            "mean_bytes_500x375": int(np.mean([s for i, s in enumerate(sizes)
                                                if i % 8 != 7])),
            "seconds": round(time.time() - t0, 2)}
    with open(os.path.join(out, "bench_images.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
