#!/usr/bin/python3
"""Trains a small CNN on Fashion-MNIST with PyTorch and exports it to ONNX, as
a user bringing a PyTorch model to `slimtrain compress` would.

usage: torch_teacher.py OUT_DIR [EPOCHS] [fold]    (EPOCHS may be a fraction)

The network has mobilenet_tiny's layout (3x3 stem, four depthwise-separable
blocks, global average pool, linear), trained with the recipe of
configs/fmnist_pretrain.yaml (SGD momentum 0.9, lr 0.1 cosine, weight decay
5e-4, batch 64). It is exported twice with torch.onnx.export (opset 13): in
TrainingMode.PRESERVE, which keeps BatchNormalization nodes (inference mode),
to OUT_DIR/model.onnx, and the default way (EVAL: BN folded into the
convolutions, conv biases) to OUT_DIR/folded/model.onnx. Before slimtrain put
a trainable batch norm back after folded convolutions
(TrainConfig.renormalize_convs), QAT + 75 % pruning of the folded graph lost
2.7 points here (student 0.8887 vs teacher 0.9158). Tensors the ACT config names keep
PyTorch's names except two, renamed so configs/fmnist_act.yaml runs unchanged:
the last block's ReLU output -> "pw_relu_4", the graph output -> "logits"
(the input is "image"). Writes OUT_DIR/model.onnx, OUT_DIR/folded/model.onnx
and OUT_DIR/torch.json ({"top1": test accuracy by PyTorch}); with a third
argument "fold" only the folded export, as OUT_DIR/model.onnx.
"""
import gzip
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

FMNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    x = idx(f"{FMNIST}/{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = idx(f"{FMNIST}/{split}-labels-idx1-ubyte.gz").astype(np.int64)
    x = (x - MEAN) / STD
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def conv_bn_relu(cin, cout, k, stride, groups):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU()]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        layers = conv_bn_relu(1, 32, 3, 1, 1)
        for cin, cout, stride in ((32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)):
            layers += conv_bn_relu(cin, cin, 3, stride, cin) + conv_bn_relu(cin, cout, 1, 1, 1)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(x)


def rename(model, old, new):
    for n in model.graph.node:
        n.input[:] = [new if i == old else i for i in n.input]
        n.output[:] = [new if o == old else o for o in n.output]
    for v in list(model.graph.output) + list(model.graph.value_info):
        if v.name == old:
            v.name = new


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, epochs = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3
    fold = len(sys.argv) > 3 and sys.argv[3] == "fold"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    model = TinyNet()
    batch = 64
    per_epoch = len(xtr) // batch
    steps = max(1, round(epochs * per_epoch))  # EPOCHS may be a fraction
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    for epoch in range((steps + per_epoch - 1) // per_epoch):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for s in range(min(per_epoch, steps - epoch * per_epoch)):
            i = perm[s * batch:(s + 1) * batch]
            loss = nn.functional.cross_entropy(model(xtr[i]), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, "
              f"test top-1 {evaluate(model, xte, yte):.4f}", flush=True)
    model.eval()
    top1 = evaluate(model, xte, yte)
    exports = ((os.path.join(out, "model.onnx"), torch.onnx.TrainingMode.PRESERVE),
               (os.path.join(out, "folded", "model.onnx"), torch.onnx.TrainingMode.EVAL))
    if fold:
        exports = ((os.path.join(out, "model.onnx"), torch.onnx.TrainingMode.EVAL),)
    for path, mode in exports:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.onnx.export(model, xte[:2], path, opset_version=13, input_names=["image"],
                          output_names=["logits"],
                          dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}}, training=mode)
        m = onnx.load(path)
        relus = [n for n in m.graph.node if n.op_type == "Relu"]
        rename(m, relus[-1].output[0], "pw_relu_4")
        onnx.checker.check_model(m)
        onnx.save(m, path)
        print(f"wrote {path}: PyTorch test top-1 {top1:.4f}, "
              f"{sum(1 for n in m.graph.node if n.op_type == 'BatchNormalization')} "
              "BatchNormalization nodes")
    with open(os.path.join(out, "torch.json"), "w") as f:
        json.dump({"top1": top1, "epochs": epochs}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
