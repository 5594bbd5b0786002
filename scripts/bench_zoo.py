#!/usr/bin/python3
"""The zoo section of scripts/bench: the ACT step of torchvision architectures
in slimtrain and in PyTorch, on the same BN-folded model, batch and threads.

  bench_zoo.py prepare DIR [--models a,b]   exports DIR/<model>.onnx (BN folded
        by torch.onnx.export in eval mode), DIR/<model>.json (forward GFLOP
        per image, input size) and DIR/random_<hw>.h5 (uint8 images, labels)
  bench_zoo.py torch --model M --batch B --threads T --iters N
        the PyTorch ACT step on the same model (BN folded by torch.fx's
        fuse, as the export does), one JSON line: images/s of the median step
  bench_zoo.py slim DIR --binary SLIMTRAIN --model M --batch B --threads T --round R --iters N
        slimtrain's side: compress with SLIM_CONFIG, one JSON row
  bench_zoo.py report DIR PERFORMANCE.md COMMIT
        the "## Zoo" section of PERFORMANCE.md from DIR/rows.jsonl

The PyTorch step is the one scripts/bench_torch.py writes for mobilenet_tiny
(PACT + 8-bit per-tensor fake quant of every Conv2d / Linear input, 8-bit
per-channel fake quant of the weight), with a magnitude mask on every
Conv2d / Linear weight (slimtrain's `prune_params_type: null`), a frozen
teacher forward and l2 (MSE) distillation on the logits, Momentum SGD.
slimtrain's side is `compress` with SLIM_CONFIG (below). torchvision's
VisionTransformer keeps its attention projections as raw parameters
(nn.MultiheadAttention), which this PyTorch step leaves float; slimtrain
quantizes the exported MatMuls: the ViT row favours PyTorch.
"""
import argparse
import copy
import json
import os
import resource
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_report import replace_section  # noqa: E402
from bench_torch import QuantWrap, time_steps  # noqa: E402

CLASSES = 1000


def vit_s_16():
    """ViT-S/16 (DeiT-small's shape): 12 layers, 6 heads, width 384, 224x224."""
    return torchvision.models.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384,
        mlp_dim=1536, num_classes=CLASSES)


def tv(name):
    return lambda: getattr(torchvision.models, name)(weights=None, num_classes=CLASSES)


# name -> (constructor, input height = width)
MODELS = {
    "resnet18": (tv("resnet18"), 224),
    "resnet50": (tv("resnet50"), 224),
    "mobilenet_v2": (tv("mobilenet_v2"), 224),
    "mobilenet_v3_large": (tv("mobilenet_v3_large"), 224),
    "efficientnet_b0": (tv("efficientnet_b0"), 224),
    "shufflenet_v2_x1_0": (tv("shufflenet_v2_x1_0"), 224),
    "vit_s_16": (vit_s_16, 224),
}


def build(name):
    torch.manual_seed(0)
    ctor, hw = MODELS[name]
    return ctor().eval(), hw


def fold_sequential(module):
    """Conv2d + BatchNorm2d adjacent in an nn.Sequential folded in place (for
    models torch.fx cannot trace, e.g. ShuffleNetV2's channel split)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    for child in module.children():
        fold_sequential(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
    return module


def fold_bn(model):
    """Conv + BatchNorm folded (what torch.onnx.export does in eval mode):
    torch.fx's fuse, or the Sequential pairs where fx cannot trace. Exits
    when a BatchNorm2d is left (the two sides would run different models)."""
    try:
        from torch.fx.experimental.optimization import fuse
        model = fuse(model)
    except Exception:  # noqa: BLE001 - not traceable: fold what Sequentials hold
        model = fold_sequential(model)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if left:
        raise SystemExit(f"bench_zoo: {left} BatchNorm2d not folded in {type(model).__name__}")
    return model


def forward_gflop(model, hw):
    """GFLOP of one image's forward through the Conv2d / Linear layers and the
    attention products (2 per multiply-add); elementwise work not counted."""
    flops = [0]

    def conv(m, i, o):
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        flops[0] += 2 * o.numel() * k

    def linear(m, i, o):
        flops[0] += 2 * o.numel() * m.in_features

    def mha(m, i, o):  # projections in and out, QK^T, attention x V (called with
        # keywords: the shape comes from the output)
        n, t, e = o[0].shape if m.batch_first else o[0].transpose(0, 1).shape
        flops[0] += 2 * n * t * (4 * e * e + 2 * t * e)

    hooks = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(linear))
        elif isinstance(mod, nn.MultiheadAttention):
            hooks.append(mod.register_forward_hook(mha))
    with torch.no_grad():
        model(torch.zeros(1, 3, hw, hw))
    for h in hooks:
        h.remove()
    return flops[0] / 1e9


def prepare(out, names):
    import h5py
    import numpy as np
    os.makedirs(out, exist_ok=True)
    sizes = set()
    for name in names:
        onnx_path = os.path.join(out, name + ".onnx")
        model, hw = build(name)
        sizes.add(hw)
        if not os.path.exists(onnx_path):
            torch.onnx.export(model, torch.randn(1, 3, hw, hw), onnx_path, opset_version=13,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"model": name, "hw": hw, "forward_gflop": forward_gflop(model, hw)}, f)
        print(f"bench_zoo: {onnx_path}", file=sys.stderr)
    rng = np.random.default_rng(0)
    for hw in sorted(sizes):
        path = os.path.join(out, f"random_{hw}.h5")
        if not os.path.exists(path):
            with h5py.File(path, "w") as f:
                f["x"] = rng.integers(0, 256, (32, 3, hw, hw), dtype=np.uint8)
                f["y"] = rng.integers(0, CLASSES, (32,), dtype=np.int64)


# slimtrain's side: compress with this config (an ACT config; the zoo step
# without renormalized convs: by default compress gives each conv of a
# BN-folded CNN a trainable batch norm, work the PyTorch step does not do).
SLIM_CONFIG = """Global:
  model_dir: {d}
  model_filename: {model}.onnx
  batch_size: {batch}
  eval_batch_size: {batch}
  seed: 1
  num_threads: {threads}
  save_dir: {out}
  Data: {{format: hdf5, train_images: {d}/random_224.h5, eval_images: {d}/random_224.h5,
         mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}
Checkpoint: {{every_iters: 0, resume: never}}
Quantization:
  use_pact: true
  activation_quantize_type: moving_average_abs_max
  weight_quantize_type: channel_wise_abs_max
  quantize_op_types: [conv2d, depthwise_conv2d, mul]
Distillation: {{loss: l2}}
UnstructurePrune: {{prune_strategy: gmp, ratio: 0.5, prune_params_type: null}}
TrainConfig:
  renormalize_convs: false
  train_iter: {train_iter}
  eval_iter: 100000
  logging_iter: 1
  learning_rate: 0.0001
  optimizer_builder: {{optimizer: {{type: Momentum, momentum: 0.9}}}}
"""


def slim_step(a):
    """Runs slimtrain compress on the exported model for 1 + iters iterations
    (no ONNX Runtime check) and prints its row: images/s of the median
    logging interval after the first, peak RSS of the whole run."""
    import shutil
    import statistics
    import subprocess
    d = os.path.abspath(a.dir)
    out = os.path.join(d, f"out_{a.model}_{a.threads}")
    shutil.rmtree(out, ignore_errors=True)
    cfg = os.path.join(d, f"{a.model}.yaml")
    with open(cfg, "w") as f:
        f.write(SLIM_CONFIG.format(d=d, model=a.model, batch=a.batch, threads=a.threads, out=out,
                                   train_iter=a.iters + 1))
    rss, log = os.path.join(d, f"{a.model}.rss"), os.path.join(d, f"{a.model}.log")
    with open(log, "w") as lf:
        rc = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss, a.binary, "compress", cfg],
                             stdout=lf, stderr=subprocess.STDOUT,
                             env=dict(os.environ, SLIM_ORT_SCRIPT="/nonexistent"))
    if rc != 0:
        sys.stderr.write(open(log).read()[-4000:])
        raise SystemExit(f"bench_zoo: slimtrain compress of {a.model} exited {rc} (log: {log})")
    rows = [r for r in map(json.loads, open(os.path.join(out, "metrics.jsonl"))) if "images_per_s" in r]
    print(json.dumps({"row": "step", "side": "slimtrain", "model": a.model, "batch": a.batch,
                      "threads": a.threads, "round": a.round,
                      "images_per_s": statistics.median(r["images_per_s"] for r in rows[1:] or rows),
                      "peak_rss_mb": int(open(rss).read().split()[-1]) / 1024.0}))


def quantize_all(module):
    """QuantWrap around every Conv2d / Linear, each weight masked at 50 %."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)) and not isinstance(
                child, nn.modules.linear.NonDynamicallyQuantizableLinear):
            w = child.weight.detach().abs().flatten()
            mask = (child.weight.detach().abs() > w.kthvalue(max(1, w.numel() // 2)).values).float()
            setattr(module, name, QuantWrap(child, mask))
        else:
            quantize_all(child)
    return module


def torch_step(a):
    torch.set_num_threads(a.threads)
    model, hw = build(a.model)
    teacher = fold_bn(model)
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = quantize_all(copy.deepcopy(teacher)).train()
    opt = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(a.batch, 3, hw, hw)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            t = teacher(x)
        loss = nn.functional.mse_loss(student(x), t)
        loss.backward()
        opt.step()

    steps = time_steps(step, a.warmup, a.iters)
    median = sorted(steps)[len(steps) // 2]
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": a.model,
                      "batch": a.batch, "threads": a.threads, "iters": a.iters,
                      "images_per_s": a.batch / median,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


GOALS = {  # model -> (least ratio to PyTorch, least share of the two-core FMA peak)
    "resnet18": (1.4, 0.55), "resnet50": (1.4, 0.55),
    "mobilenet_v2": (3.0, None), "mobilenet_v3_large": (3.0, None),
}
SECTION = "## Zoo"


def med(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def report(d, md_path, commit):
    """Writes the "## Zoo" section of md_path (only that section) and
    d/bench_zoo.json from d/rows.jsonl and d/<model>.json."""
    import datetime
    rows = [json.loads(line) for line in open(os.path.join(d, "rows.jsonl"))]
    probe = next((r["r"].get("probe_gflops_1core") for r in rows if r["row"] == "probe"), None)
    peak2 = 2 * probe if probe else None
    steps = [r for r in rows if r["row"] == "step"]
    order = list(dict.fromkeys(r["model"] for r in steps))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "unknown CPU")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ok = lambda c: "yes" if c else "**no**"  # noqa: E731
    out, table = [], []
    for m in order:
        info = json.load(open(os.path.join(d, m + ".json")))
        s2 = {r["round"]: r for r in steps if r["model"] == m and r["side"] == "slimtrain" and r["threads"] == 2}
        pt = {r["round"]: r for r in steps if r["model"] == m and r["side"] == "pytorch"}
        s1 = {r["round"]: r for r in steps if r["model"] == m and r["side"] == "slimtrain" and r["threads"] == 1}
        ratios = [s2[k]["images_per_s"] / pt[k]["images_per_s"] for k in sorted(s2) if k in pt]
        si, ti = med([r["images_per_s"] for r in s2.values()]), med([r["images_per_s"] for r in pt.values()])
        sm, tm = max(r["peak_rss_mb"] for r in s2.values()), max(r["peak_rss_mb"] for r in pt.values())
        step_gflop = 4 * info["forward_gflop"]  # teacher + student forward, backward = 2 forwards
        row = {"model": m, "hw": info["hw"], "batch": next(iter(s2.values()))["batch"],
               "slimtrain_images_per_s": si, "pytorch_images_per_s": ti, "ratio": med(ratios),
               "ratios": ratios, "step_gflop_per_image": step_gflop,
               "slimtrain_gflops": si * step_gflop, "pytorch_gflops": ti * step_gflop,
               "slimtrain_peak_rss_mb": sm, "pytorch_peak_rss_mb": tm}
        if s1:  # the median of the per-round ratios, as for slimtrain / PyTorch
            row["one_thread_images_per_s"] = med([r["images_per_s"] for r in s1.values()])
            row["thread_scalings"] = [s2[k]["images_per_s"] / s1[k]["images_per_s"]
                                      for k in sorted(s1) if k in s2]
            row["thread_scaling"] = med(row["thread_scalings"])
        out.append(row)
        ratio_goal, peak_goal = GOALS.get(m, (1.3, None))
        goals = [f">= {ratio_goal}x"] + ([f">= {100 * peak_goal:.0f} % peak"] if peak_goal else [])
        met = row["ratio"] >= ratio_goal and sm < tm
        if peak_goal and peak2:
            met = met and row["slimtrain_gflops"] / peak2 >= peak_goal
        pct = lambda g: f" ({100 * g / peak2:.0f} %)" if peak2 else ""  # noqa: E731
        table.append(f"| {m}, {info['hw']}x{info['hw']}, batch {row['batch']} | {si:.2f} | {ti:.2f} | "
                     f"{row['ratio']:.2f}x ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                     f"{row['slimtrain_gflops']:.1f}{pct(row['slimtrain_gflops'])} | "
                     f"{row['pytorch_gflops']:.1f}{pct(row['pytorch_gflops'])} | {sm:.0f} / {tm:.0f} | "
                     f"{', '.join(goals)}, less memory | {ok(met)} |")
    n_rounds = len({r["round"] for r in steps})
    L = [SECTION, "",
         f"Measured {now} on {cpu} ({os.cpu_count()} cores), commit {commit}, by `scripts/bench zoo` "
         "(regenerated each run; numbers move with the host's load).",
         "The ACT step (frozen teacher forward; student with PACT + 8-bit fake quant of every "
         "Conv / Gemm / MatMul-with-weight input and 8-bit per-channel weights; GMP masks on every "
         "weight; l2 distillation on the logits; Momentum) of torchvision architectures with random "
         "weights, BN folded on both sides, 2 threads on one rank, slimtrain `compress` against the "
         f"same step in PyTorch {torch.__version__} (`scripts/bench_zoo.py`), {n_rounds} interleaved "
         "round(s), medians."
         + (f" Measured FMA peak: {probe:.1f} GFLOP/s on one core (`slimtrain_bench --probe`), "
            f"{peak2:.1f} for the two cores." if probe else ""), "",
         "| model, input, batch | slimtrain img/s | PyTorch img/s | slimtrain / PyTorch (rounds) | "
         "slimtrain GFLOP/s (% of peak) | PyTorch GFLOP/s (% of peak) | peak memory MB, slimtrain / PyTorch | goal | met |",
         "|---|---:|---:|---:|---:|---:|---:|---|---|"] + table
    scal = [r for r in out if "thread_scaling" in r]
    if scal:
        L += ["", "| thread scaling, one rank | 1 thread img/s | 2 threads img/s | 2 / 1 (rounds) | goal | met |",
              "|---|---:|---:|---:|---|---|"]
        L += [f"| {r['model']}, {r['hw']}x{r['hw']}, batch {r['batch']} | {r['one_thread_images_per_s']:.2f} | "
              f"{r['slimtrain_images_per_s']:.2f} | {r['thread_scaling']:.2f}x "
              f"({', '.join(f'{x:.2f}' for x in r['thread_scalings'])}) | >= 1.8x | "
              f"{ok(r['thread_scaling'] >= 1.8)} |" for r in scal]
    L += ["",
          "- img/s: slimtrain, the median logging interval (one iteration each) after the first; "
          "PyTorch, the median step after one warm-up step. Ratio: the median of the per-round ratios "
          "(thread scaling: each round's 1-thread run follows its 2-thread run).",
          "- GFLOP/s: 4 forward passes per image (teacher forward, student forward, backward as two "
          "forwards) of the Conv, Linear and attention products (`bench_zoo.py` counts them with "
          "forward hooks), times img/s; fake quant, PACT, masks and elementwise work not counted.",
          "- Peak memory: the largest resident set of the whole process (slimtrain: `/usr/bin/time`, "
          "data, evaluation and export included; PyTorch: `ru_maxrss`), the largest over the rounds.",
          "- vit_s_16 is ViT-S/16 (12 layers, width 384, 6 heads). PyTorch's nn.MultiheadAttention "
          "keeps its projections as raw parameters, which the PyTorch step leaves float, while "
          "slimtrain quantizes the exported MatMuls: that row favours PyTorch.", ""]
    section = "\n".join(L)
    replace_section(md_path, section, SECTION)
    json.dump({"rows": out, "probe_gflops_1core": probe, "cpu": cpu, "commit": commit, "date": now},
              open(os.path.join(d, "bench_zoo.json"), "w"), indent=1)
    print(section)
    print(f"wrote {md_path} and {os.path.join(d, 'bench_zoo.json')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--models", default=",".join(MODELS))
    step = argparse.ArgumentParser(add_help=False)  # what both sides' steps take
    step.add_argument("--model", required=True, choices=sorted(MODELS))
    step.add_argument("--batch", type=int, default=8)
    step.add_argument("--threads", type=int, default=2)
    step.add_argument("--iters", type=int, default=5)
    t = sub.add_parser("torch", parents=[step])
    t.add_argument("--warmup", type=int, default=1)
    sl = sub.add_parser("slim", parents=[step])
    sl.add_argument("dir")
    sl.add_argument("--binary", required=True)
    sl.add_argument("--round", type=int, default=1)
    r = sub.add_parser("report")
    r.add_argument("dir")
    r.add_argument("md")
    r.add_argument("commit")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir, a.models.split(","))
    elif a.cmd == "report":
        report(a.dir, a.md, a.commit)
    elif a.cmd == "slim":
        slim_step(a)
    else:
        torch_step(a)


if __name__ == "__main__":
    main()
