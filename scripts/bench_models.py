#!/usr/bin/env python3
"""Inputs of scripts/bench's ONNX Runtime section: torchvision's mobilenet_v2
(random weights, seed 0, 1000 classes) exported to ONNX opset 13 with a
dynamic batch axis, and an HDF5 file of random 224x224 RGB images (`x`
uint8 [N, 3, 224, 224], `y` int64 [N]) to compress it on.
Usage: /usr/bin/python3 scripts/bench_models.py OUT_DIR [N]"""
import os
import sys

import h5py
import numpy as np
import torch
import torchvision


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=1000).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, os.path.join(out, "mobilenet_v2.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    rng = np.random.default_rng(0)
    with h5py.File(os.path.join(out, "random_224.h5"), "w") as f:
        f["x"] = rng.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8)
        f["y"] = rng.integers(0, 1000, (n,), dtype=np.int64)
    print(f"wrote {out}/mobilenet_v2.onnx and {out}/random_224.h5 ({n} images)")


if __name__ == "__main__":
    main()
