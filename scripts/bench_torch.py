#!/usr/bin/python3
"""PyTorch side of scripts/bench: images/s of the FP32 training step of the
same model, batch and thread count as slimtrain's bench. Prints one JSON line.

Usage: bench_torch.py --model mobilenet_tiny --batch 64 --threads 2 --iters 30
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn


def mobilenet_tiny(classes=10):
    """conv3x3(1->32)+BN+ReLU; dw-separable blocks to 64 (s2), 64, 128 (s2),
    128; global average pool; FC 128 -> classes (the zoo's mobilenet_tiny)."""
    layers = [nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
    for cin, cout, stride in [(32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]:
        layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                   nn.BatchNorm2d(cin), nn.ReLU(),
                   nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, classes)]
    return nn.Sequential(*layers)


def build(name):
    if name == "mobilenet_tiny":
        return mobilenet_tiny(), (1, 28, 28)
    if name == "mobilenet_v2":
        import torchvision
        return torchvision.models.mobilenet_v2(num_classes=1000), (3, 224, 224)
    raise SystemExit(f"unknown model {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenet_tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, shape = build(a.model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, *shape)
    classes = 1000 if a.model == "mobilenet_v2" else 10
    y = torch.randint(0, classes, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": a.model,
                      "batch": a.batch, "threads": a.threads, "iters": a.iters,
                      "images_per_s": a.batch * a.iters / dt, "peak_rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
