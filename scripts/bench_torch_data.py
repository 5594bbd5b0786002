#!/usr/bin/python3
"""PyTorch/torchvision (and PaddleSlim-ACT-reader) reference numbers for the data bench.

Usage:
    bench_torch_data.py DIR_OR_LIST [--n 512] [--threads 1] [--seed 0]

DIR_OR_LIST is either an ACT list file ("relative/path label" per line, paths relative
to the list's directory; e.g. list_10000.txt from make_bench_images.py) or a directory
that is searched recursively for .jpg/.jpeg/.png files (e.g. an ImageFolder root).
The first --n samples are used (cycling when there are fewer files).

Why: slimtrain's C++ image pipeline is compared against what a PyTorch user gets from
one single-threaded torchvision worker, and against ACT's own Python reader.  All
numbers are images per second of ONE process with torch.set_num_threads(--threads),
files read from the page cache (a warm-up pass reads every file first):

  decode_img_s     PIL Image.open + convert('RGB')            (ImageFolder's loader)
  train_img_s      loader + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor
                   + Normalize(ImageNet mean/std)
  eval_img_s       loader + Resize(256) + CenterCrop(224) + ToTensor + Normalize
  act_train_img_s  PaddleSlim imagenet_reader.py train path: ACT random_crop (crop,
                   then resize to 224 with PIL LANCZOS), flip with p=1/2,
                   convert('RGB'), float32 HWC->CHW /255, (x-mean)/std in numpy
  act_eval_img_s   ACT eval path: resize_short(256, LANCZOS, round()), center crop 224
                   ((W-224)//2), same normalisation

Prints one JSON line: {"train_img_s", "eval_img_s", "decode_img_s", "act_train_img_s",
"act_eval_img_s", "n", "files", "mean_bytes", "threads", "versions"}.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
EXTS = (".jpg", ".jpeg", ".png")


def collect(src):
    if os.path.isdir(src):
        out = []
        for root, dirs, files in os.walk(src):
            dirs.sort()
            out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTS)]
        return out
    base = os.path.dirname(os.path.abspath(src))
    out = []
    with open(src) as f:
        for line in f:
            tok = line.split()
            if tok:
                out.append(os.path.join(base, tok[0]))
    return out


def pil_loader(path):
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


# --- PaddleSlim example/auto_compression/image_classification/imagenet_reader.py ---
def act_random_crop(img, size, rng, scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.)):
    aspect_ratio = math.sqrt(rng.uniform(*ratio))
    w = 1. * aspect_ratio
    h = 1. / aspect_ratio
    bound = min((float(img.size[0]) / img.size[1]) / (w ** 2),
                (float(img.size[1]) / img.size[0]) / (h ** 2))
    scale_max = min(scale[1], bound)
    scale_min = min(scale[0], bound)
    target_area = img.size[0] * img.size[1] * rng.uniform(scale_min, scale_max)
    target_size = math.sqrt(target_area)
    w = int(target_size * w)
    h = int(target_size * h)
    i = rng.randint(0, img.size[0] - w + 1)
    j = rng.randint(0, img.size[1] - h + 1)
    img = img.crop((i, j, i + w, j + h))
    return img.resize((size, size), Image.LANCZOS)


def act_resize_short(img, target):
    percent = float(target) / min(img.size[0], img.size[1])
    return img.resize((int(round(img.size[0] * percent)), int(round(img.size[1] * percent))),
                      Image.LANCZOS)


def act_center_crop(img, size):
    w, h = img.size
    x0, y0 = (w - size) // 2, (h - size) // 2
    return img.crop((x0, y0, x0 + size, y0 + size))


def act_normalize(img):
    if img.mode != "RGB":
        img = img.convert("RGB")
    x = np.array(img).astype("float32").transpose((2, 0, 1)) / 255
    x -= np.array(MEAN).reshape((3, 1, 1))
    x /= np.array(STD).reshape((3, 1, 1))
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", metavar="DIR_OR_LIST")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np_rng = np.random.RandomState(a.seed)

    files = collect(a.src)
    if not files:
        sys.exit(f"no images found in {a.src}")
    paths = [files[i % len(files)] for i in range(a.n)]
    uniq = sorted(set(paths))
    mean_bytes = int(np.mean([os.path.getsize(p) for p in uniq]))

    norm = T.Normalize(MEAN, STD)
    train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
                          T.ToTensor(), norm])
    eval_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm])

    def decode(p):
        return pil_loader(p)

    def train(p):
        return train_tf(pil_loader(p))

    def evaluate(p):
        return eval_tf(pil_loader(p))

    def act_train(p):
        img = Image.open(p)
        img = act_random_crop(img, 224, np_rng)
        if np_rng.randint(0, 2) == 1:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return act_normalize(img)

    def act_eval(p):
        img = Image.open(p)
        img = act_center_crop(act_resize_short(img, 256), 224)
        return act_normalize(img)

    for p in uniq:                      # warm-up: page cache + PIL/torch code paths
        decode(p)
    for fn in (train, evaluate, act_train, act_eval):
        for p in paths[:min(16, len(paths))]:
            fn(p)

    res = {}
    for key, fn in (("decode_img_s", decode), ("train_img_s", train),
                    ("eval_img_s", evaluate), ("act_train_img_s", act_train),
                    ("act_eval_img_s", act_eval)):
        t0 = time.perf_counter()
        for p in paths:
            out = fn(p)
        dt = time.perf_counter() - t0
        res[key] = round(a.n / dt, 1)
    assert tuple(out.shape) == (3, 224, 224)
    res.update({"n": a.n, "files": len(uniq), "mean_bytes": mean_bytes,
                "threads": a.threads,
                "versions": {"torch": torch.__version__,
                             "torchvision": torchvision.__version__,
                             "pil": PIL.__version__}})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
