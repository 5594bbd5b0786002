#!/usr/bin/python3
"""PyTorch side of scripts/bench: images/s of the FP32 training step, or with
--act of the ACT compression step, of the same model, batch and thread count
as slimtrain's bench. Prints one JSON line.

The ACT step is written the way a PyTorch user would (the same work as
slimtrain's compress iteration with tests/e2e/configs/act_small.yaml): a
frozen FP32 teacher forward (eval mode, no grad); the student with every
Conv2d / Linear wrapped: PACT on the input activation (learnable alpha,
x - relu(x - a) + relu(-a - x)), per-tensor abs-max fake quant of the
activation and per-output-channel abs-max fake quant of the weight
(torch.fake_quantize_*, 8 bit, straight-through), 1x1 conv weights masked
(GMP, 50 % zeros); l2 distillation (MSE) on the last feature map (mobilenet_tiny)
and the logits; Momentum SGD. --quant-act-ops also fake-quantizes both inputs
of torchvision mobilenet_v2's residual Adds and the input of its global pool
(elementwise_add and pool2d in scripts/bench_mobilenet_v2.yaml).

Usage: bench_torch.py --model mobilenet_tiny --batch 64 --threads 2 --iters 30 [--act [--quant-act-ops]]
"""
import copy
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


def fake_quant(x):
    """Per-tensor 8-bit abs-max fake quant (straight-through)."""
    s = x.detach().abs().max().clamp_min(1e-8) / 127.0
    return torch.fake_quantize_per_tensor_affine(x, s.item(), 0, -128, 127)


class QuantWrap(nn.Module):
    """PACT + 8-bit fake quant of the input, 8-bit per-channel fake quant of
    the (masked) weight, then the wrapped Conv2d / Linear."""

    def __init__(self, op, mask=None):
        super().__init__()
        self.op = op
        self.alpha = nn.Parameter(torch.tensor(20.0))
        self.register_buffer("mask", mask)

    def forward(self, x):
        a = self.alpha
        x = fake_quant(x - torch.relu(x - a) + torch.relu(-a - x))
        w = self.op.weight if self.mask is None else self.op.weight * self.mask
        ws = w.detach().abs().flatten(1).max(1).values.clamp_min(1e-8) / 127.0
        w = torch.fake_quantize_per_channel_affine(w, ws, torch.zeros_like(ws, dtype=torch.int32),
                                                   0, -128, 127)
        if isinstance(self.op, nn.Conv2d):
            return nn.functional.conv2d(x, w, self.op.bias, self.op.stride, self.op.padding,
                                        self.op.dilation, self.op.groups)
        return nn.functional.linear(x, w, self.op.bias)


class QuantResidual(nn.Module):
    """torchvision InvertedResidual with use_res_connect: x + conv(x) with
    both Add inputs fake-quantized."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return fake_quant(x) + fake_quant(self.block.conv(x))


def quantize_adds(module):
    for name, child in module.named_children():
        if getattr(child, "use_res_connect", False):
            setattr(module, name, QuantResidual(child))
        else:
            quantize_adds(child)
    return module


def quantize(module):
    """Wraps every Conv2d / Linear below `module` (1x1 convs get a 50 % mask)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            mask = None
            if isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1) and child.groups == 1:
                w = child.weight.detach().abs().flatten()
                mask = (child.weight.detach().abs() > w.kthvalue(w.numel() // 2).values).float()
            setattr(module, name, QuantWrap(child, mask))
        else:
            quantize(child)
    return module


def time_steps(step, warmup, iters):
    """Runs step() `warmup` times, then `iters` times each timed on its own
    (seconds): the median step is what a short burst of other load on a
    shared host moves least (slimtrain's bench does the same)."""
    for _ in range(warmup):
        step()
    steps = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenet_tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--act", action="store_true", help="the ACT compression step instead of FP32 training")
    ap.add_argument("--quant-act-ops", action="store_true",
                    help="with --act (mobilenet_v2): quantize residual Add and global pool inputs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, shape = build(a.model)
    if a.act:
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        model = quantize(model)
        if a.quant_act_ops:
            model = quantize_adds(model)
            model.features.register_forward_hook(lambda m, i, o: fake_quant(o))
        # distilled feature map: the input of the global pool (mobilenet_tiny)
        feats = {}
        if a.model == "mobilenet_tiny":
            model[-4].register_forward_hook(lambda m, i, o: feats.__setitem__("s", o))
            teacher[-4].register_forward_hook(lambda m, i, o: feats.__setitem__("t", o))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, *shape)
    classes = 1000 if a.model == "mobilenet_v2" else 10
    y = torch.randint(0, classes, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        if a.act:
            with torch.no_grad():
                t_logits = teacher(x)
            logits = model(x)
            loss = nn.functional.mse_loss(logits, t_logits)
            if "s" in feats:
                loss = loss + nn.functional.mse_loss(feats["s"], feats["t"])
        else:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    steps = time_steps(step, a.warmup, a.iters)
    dt = sum(steps)
    median = sorted(steps)[len(steps) // 2]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    name = ("act:" if a.act else "") + a.model
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": name,
                      "batch": a.batch, "threads": a.threads, "iters": a.iters,
                      "images_per_s": a.batch / median, "images_per_s_mean": a.batch * a.iters / dt,
                      "peak_rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
