#!/usr/bin/env python3
"""Exports torchvision classifiers (random weights, eval mode) to ONNX opset 13
with a dynamic batch axis, plus a random input and PyTorch's output as
TensorProto files, for slimtrain's onnx_torchvision_test to reproduce.

Usage: torchvision_parity.py OUT_DIR [MODEL ...]
Writes OUT_DIR/<model>/{model.onnx, test_data_set_0/input_0.pb, output_0.pb}
and OUT_DIR/DONE when every model was written. Safe to run concurrently (the
C++ parity test and inspect_torchvision.py share one folder): a lock file
serialises writers and an existing DONE means there is nothing to do.
"""
import fcntl
import os
import sys

import onnx
import onnx.numpy_helper
import torch
import torchvision

MODELS = ["mobilenet_v2", "mobilenet_v3_small", "resnet18", "squeezenet1_1"]


def export(name, out_dir):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    # Random BN statistics so batch norm is not an identity.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    d = os.path.join(out_dir, name)
    data = os.path.join(d, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    torch.onnx.export(model, x, os.path.join(d, "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    for fname, t, tname in (("input_0.pb", x, "input"), ("output_0.pb", y, "output")):
        proto = onnx.numpy_helper.from_array(t.numpy(), tname)
        with open(os.path.join(data, fname), "wb") as f:
            f.write(proto.SerializeToString())
    print(f"{name}: exported, output {tuple(y.shape)}", flush=True)


def export_all(out_dir, names=MODELS):
    """Exports `names` into out_dir unless its DONE marker lists them all."""
    os.makedirs(out_dir, exist_ok=True)
    done = os.path.join(out_dir, "DONE")
    with open(out_dir.rstrip("/") + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            with open(done) as f:
                if set(names) <= set(f.read().split()):
                    return
            os.remove(done)
        torch.set_num_threads(2)
        for name in names:
            export(name, out_dir)
        with open(done, "w") as f:
            f.write("\n".join(names) + "\n")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    export_all(sys.argv[1], sys.argv[2:] or MODELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
