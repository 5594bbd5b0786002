#!/usr/bin/python3
"""The model zoo test: every model a user brings loads, runs and compresses.

usage: zoo.py SLIMTRAIN WORK_DIR [--only NAME,NAME] [--table FILE] [--timeout S]

For each model below (torchvision, random weights, torch.manual_seed(0), eval
mode, torch.onnx.export opset 13 with a dynamic batch axis, small inputs):
  1. infer: a random input written as an ONNX TensorProto, run by
     `slimtrain infer` and by ONNX Runtime (scripts/ort_run.js); passes when
     max |slimtrain - ORT| / max |ORT| <= 1e-4.
  2. compress: an HDF5 data set (random uint8 images with class labels for
     classifiers, with random (N, H, W) masks for segmentation nets; random
     int64 token ids with class labels for the text model), a config in
     ACT's form (Quantization with PACT, l2 Distillation — for the text model
     of the logits and of the encoder's output, a hidden state — GMP
     UnstructurePrune 0.5 on every weight, 4 training iterations, batch 8,
     16 evaluation samples), `slimtrain compress`; passes when it exits 0 and
     ONNX Runtime ran the INT8 export (onnxruntime_top1 / onnxruntime_miou
     not null). The number of predictions (pixels for segmentation) ONNX
     Runtime and slimtrain disagree on is recorded, not judged: random models
     have near-tied logits.
A failing model or stage is recorded with the first error line and the script
goes on. Prints one line per model and stage and a markdown table (to FILE
with --table). Exit status 0 when every infer stage passed and every
compress stage exited 0, else 1; 77 (ctest: skipped) without the Python
packages or onnxruntime-node.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback

try:
    import h5py
    import numpy as np
    import onnx
    import onnx.numpy_helper
    import torch
    import torchvision
    from torch import nn
except ImportError as e:  # ctest counts exit code 77 as a skip
    print(f"SKIP: /usr/bin/python3 lacks {e.name} (Debian python3-torch, "
          "python3-torchvision, python3-onnx, python3-h5py)")
    sys.exit(77)

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORT_RUN = os.path.join(SOURCE_DIR, "scripts", "ort_run.js")
CLASSES = 10
REL_TOL = 1e-4
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class SegOut(nn.Module):
    """torchvision segmentation models return a dict; export its 'out'."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


class TextClassifier(nn.Module):
    """Token ids [N, 16] -> embedding -> 2-layer TransformerEncoder -> mean -> 10 logits."""

    def __init__(self, vocab=1000, d_model=64, heads=2, layers=2, classes=CLASSES):
        super().__init__()
        self.emb = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=128, dropout=0.0,
                                           batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, classes)

    def forward(self, ids):
        return self.fc(self.enc(self.emb(ids)).mean(dim=1))


def tv(name, **kw):
    return lambda: getattr(torchvision.models, name)(weights=None, num_classes=CLASSES, **kw)


def seg(name):
    return lambda: SegOut(getattr(torchvision.models.segmentation, name)(
        weights=None, weights_backbone=None, num_classes=4, aux_loss=False))


def small_vit():
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128,
        num_classes=CLASSES)


# name -> (constructor, input spec, kind). Spec: ("image", H) or ("tokens", L).
MODELS = {
    "resnet18": (tv("resnet18"), ("image", 64), "classifier"),
    "resnet50": (tv("resnet50"), ("image", 64), "classifier"),
    "mobilenet_v2": (tv("mobilenet_v2"), ("image", 64), "classifier"),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), ("image", 64), "classifier"),
    "mobilenet_v3_large": (tv("mobilenet_v3_large"), ("image", 64), "classifier"),
    "efficientnet_b0": (tv("efficientnet_b0"), ("image", 64), "classifier"),
    "shufflenet_v2_x1_0": (tv("shufflenet_v2_x1_0"), ("image", 64), "classifier"),
    "squeezenet1_1": (tv("squeezenet1_1"), ("image", 64), "classifier"),
    "densenet121": (tv("densenet121"), ("image", 64), "classifier"),
    "regnet_y_400mf": (tv("regnet_y_400mf"), ("image", 64), "classifier"),
    "mnasnet0_5": (tv("mnasnet0_5"), ("image", 64), "classifier"),
    "googlenet": (tv("googlenet", aux_logits=False, init_weights=True), ("image", 64),
                  "classifier"),
    "convnext_tiny": (tv("convnext_tiny"), ("image", 64), "classifier"),
    "vit_small": (small_vit, ("image", 32), "classifier"),
    "maxvit_t": (tv("maxvit_t"), ("image", 224), "classifier"),
    "lraspp_mobilenet_v3_large": (seg("lraspp_mobilenet_v3_large"), ("image", 64),
                                  "segmentation"),
    "deeplabv3_mobilenet_v3_large": (seg("deeplabv3_mobilenet_v3_large"), ("image", 64),
                                     "segmentation"),
    "fcn_resnet50": (seg("fcn_resnet50"), ("image", 64), "segmentation"),
    "text_transformer": (TextClassifier, ("tokens", 16), "text"),
}

SEG_CLASSES = 4
EVAL_SAMPLES = 16
HIDDEN = "hidden"  # the text model's encoder output, distilled besides the logits


def name_hidden_state(path, name=HIDDEN):
    """Names the encoder output of an exported TextClassifier `name`: the input
    of the ReduceMean over the tokens (axes [1]), so a config can distil it."""
    g = onnx.load(path)
    means = [n for n in g.graph.node if n.op_type == "ReduceMean" and any(
        a.name == "axes" and list(a.ints) == [1] for a in n.attribute)]
    assert means, "no ReduceMean over the tokens in " + path
    old = means[-1].input[0]
    for n in g.graph.node:
        n.input[:] = [name if i == old else i for i in n.input]
        n.output[:] = [name if o == old else o for o in n.output]
    for v in g.graph.value_info:
        if v.name == old:
            v.name = name
    onnx.save(g, path)


def first_error_line(text):
    """The first line that reads as an error, else the first non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if "error" in low or "fail" in low or "unsupported" in low or "not supported" in low:
            return ln[:300]
    return lines[0][:300] if lines else "(no stderr)"


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(onnx.numpy_helper.from_array(array, name).SerializeToString())


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return onnx.numpy_helper.to_array(t)


def input_desc(spec):
    kind, size = spec
    return f"float32 [N,3,{size},{size}]" if kind == "image" else f"int64 [N,{size}]"


def export(name, d, opset=13):
    """Builds the model, exports it at `opset` and writes a batch-2 input.
    Returns (path, input.pb)."""
    ctor, spec, _ = MODELS[name]
    torch.manual_seed(0)
    model = ctor().eval()
    with torch.no_grad():  # random BN statistics so batch norm is not an identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        # Weights initialised to zeros (ViT's head and class token) would make the
        # output constant and the comparison vacuous.
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)
    kind, size = spec
    if kind == "image":
        x = torch.randn(2, 3, size, size)
    else:
        x = torch.randint(0, 1000, (2, size), dtype=torch.int64)
    path = os.path.join(d, "model.onnx")
    # Not under torch.no_grad(): with grad disabled, eval-mode TransformerEncoderLayer
    # and MultiheadAttention take PyTorch's fused fast path, which has no ONNX export.
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    if kind == "tokens":
        name_hidden_state(path)
    pb = os.path.join(d, "input.pb")
    write_pb(pb, x.numpy(), "input")
    return path, pb


def run(cmd, timeout, log):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = 124
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) + \
            f"\ntimed out after {timeout} s"
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n" + out + "\n--- stderr ---\n" + err)
    return rc, out, err, time.time() - t0


def infer_stage(binary, name, d, model, pb, timeout):
    r = {"stage": "infer", "pass": False}
    ort_dir, slim_dir = os.path.join(d, "ort"), os.path.join(d, "slim")
    for x in (ort_dir, slim_dir):
        shutil.rmtree(x, ignore_errors=True)
        os.makedirs(x)
    rc, _, err, _ = run(["node", ORT_RUN, model, ort_dir, pb], timeout, os.path.join(d, "ort.log"))
    if rc != 0:
        r["reason"] = "ONNX Runtime: " + first_error_line(err)
        return r
    rc, _, err, secs = run([binary, "infer", model, "--input", pb, "--output-dir", slim_dir],
                           timeout, os.path.join(d, "infer.log"))
    r["seconds"] = secs
    if rc != 0:
        r["reason"] = f"exit {rc}: " + first_error_line(err)
        return r
    want = read_pb(os.path.join(ort_dir, "output_0.pb")).astype(np.float64)
    got_path = os.path.join(slim_dir, "output_0.pb")
    if not os.path.exists(got_path):
        r["reason"] = "slimtrain infer wrote no output_0.pb"
        return r
    got = read_pb(got_path).astype(np.float64)
    r["shape"] = list(want.shape)
    if got.shape != want.shape:
        r["reason"] = f"output shape {list(got.shape)}, ONNX Runtime {list(want.shape)}"
        return r
    r["max_abs_diff"] = float(np.max(np.abs(got - want)))
    r["max_abs_out"] = float(np.max(np.abs(want)))
    r["rel_diff"] = r["max_abs_diff"] / max(r["max_abs_out"], 1e-30)
    if not np.all(np.isfinite(got)):
        r["reason"] = "non-finite values in slimtrain's output"
    elif r["rel_diff"] > REL_TOL:
        r["reason"] = f"max rel diff {r['rel_diff']:.3g} > {REL_TOL:g}"
    else:
        r["pass"] = True
    return r


def write_h5(path, n, spec, kind, seed):
    """Random samples for `spec` with labels for `kind`: class ids, or (N, H, W)
    masks of SEG_CLASSES classes for segmentation; int64 token ids for text."""
    rng = np.random.default_rng(seed)
    what, size = spec
    with h5py.File(path, "w") as f:
        if what == "tokens":
            f.create_dataset("x", data=rng.integers(0, 1000, (n, size), dtype=np.int64))
        else:
            f.create_dataset("x", data=rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
        if kind == "segmentation":
            f.create_dataset("y", data=rng.integers(0, SEG_CLASSES, (n, size, size), dtype=np.uint8))
        else:
            f.create_dataset("y", data=rng.integers(0, CLASSES, (n,), dtype=np.int64))


CONFIG = """\
Global:
  model_dir: {d}
  model_filename: model.onnx
  batch_size: 8
  seed: 1
  save_dir: {d}/run
  Data:
    format: hdf5
    train_images: {d}/train.h5
    eval_images: {d}/eval.h5{norm}
Checkpoint:
  every_iters: 0
  resume: never
Quantization:
  use_pact: true
  activation_quantize_type: moving_average_abs_max
  weight_quantize_type: channel_wise_abs_max
Distillation:
  loss: l2{nodes}
UnstructurePrune:
  prune_strategy: gmp
  ratio: 0.5
  prune_params_type: null
TrainConfig:
  train_iter: 4
  eval_iter: 1000
  logging_iter: 1
  learning_rate: 0.001
  optimizer_builder: {{optimizer: {{type: Momentum, momentum: 0.9}}, weight_decay: 4.0e-5}}
"""


def compress_stage(binary, name, d, timeout):
    _, spec, kind = MODELS[name]
    r = {"stage": "compress", "attempted": True, "pass": False,
         "metric": "miou" if kind == "segmentation" else "top1"}
    write_h5(os.path.join(d, "train.h5"), 64, spec, kind, 1)
    write_h5(os.path.join(d, "eval.h5"), EVAL_SAMPLES, spec, kind, 2)
    cfg = os.path.join(d, "act.yaml")
    norm = "" if kind == "text" else f"\n    mean: {IMAGENET_MEAN}\n    std: {IMAGENET_STD}"
    # The text model also distils its encoder output (a hidden state).
    nodes = f"\n  node: [{HIDDEN}, output]" if kind == "text" else ""
    with open(cfg, "w") as f:
        f.write(CONFIG.format(d=d, norm=norm, nodes=nodes))
    shutil.rmtree(os.path.join(d, "run"), ignore_errors=True)
    rc, _, err, secs = run([binary, "compress", cfg], timeout, os.path.join(d, "compress.log"))
    r["exit"], r["seconds"] = rc, secs
    rep_path = os.path.join(d, "run", "report.json")
    rep = {}
    if os.path.exists(rep_path):
        with open(rep_path) as f:
            rep = json.load(f)
    m = r["metric"]
    for k in ("student_" + m, "export_" + m, "onnxruntime_" + m, "teacher_" + m,
              "onnxruntime_differing_predictions", "onnxruntime_differing_samples",
              "onnxruntime_compared_pixels", "onnxruntime_first_difference", "distill_pairs"):
        r[k] = rep.get(k)
    r["quantized_ops"] = (rep.get("quantized_ops") or {}).get("count")
    # Predictions compared: samples, or pixels of a segmentation output.
    r["compared"] = r["onnxruntime_compared_pixels"] or EVAL_SAMPLES
    if rc != 0:
        r["reason"] = f"exit {rc}: " + first_error_line(err)
    elif r["onnxruntime_" + m] is None:
        r["reason"] = "ONNX Runtime check did not run: " + next(
            (ln.strip() for ln in err.splitlines() if "ONNX Runtime check skipped" in ln),
            f"no onnxruntime_{m} in report.json")
    elif r["onnxruntime_differing_predictions"] is None:
        r["reason"] = "report.json lacks onnxruntime_differing_predictions"
    else:
        r["pass"] = True
    return r


def fmt(v, spec=".3g"):
    return "null" if v is None else format(v, spec)


def line(name, r):
    if r["stage"] == "infer":
        if "rel_diff" in r:
            detail = (f"max abs diff {r['max_abs_diff']:.3g}, max |out| {r['max_abs_out']:.3g}, "
                      f"rel {r['rel_diff']:.3g}, output {r['shape']}")
            if not r["pass"]:
                detail += f"; {r['reason']}"
        else:
            detail = r.get("reason", "")
    elif not r.get("attempted", True):
        return f"{name} compress: {r['reason']}"
    else:
        m = r.get("metric", "top1")
        detail = (f"exit {r.get('exit')}, {fmt(r.get('seconds'), '.1f')} s, quantized ops "
                  f"{r.get('quantized_ops')}, student_{m} {fmt(r.get('student_' + m))}, "
                  f"export_{m} {fmt(r.get('export_' + m))}, onnxruntime_{m} "
                  f"{fmt(r.get('onnxruntime_' + m))}, differing "
                  f"{r.get('onnxruntime_differing_predictions')}/{r.get('compared')}")
        if not r["pass"]:
            detail += f"; {r['reason']}"
    return f"{name} {r['stage']}: {'PASS' if r['pass'] else 'FAIL'}: {detail}"


def table(results):
    rows = ["| model | input | infer vs ORT (max rel diff) | compress (exit, quantized ops, s) "
            "| ORT agreement (differing / N) |", "|---|---|---|---|---|"]
    for name, (inf, comp) in results.items():
        if "rel_diff" in inf:
            i = f"{'pass' if inf['pass'] else 'FAIL'} {inf['rel_diff']:.2g}"
        else:
            i = f"FAIL: {inf.get('reason', '')}"
        if comp is None:
            c, a = "—", "—"
        elif not comp.get("attempted", True):
            c, a = "not attempted", "—"
        else:
            c = (f"{'pass' if comp['pass'] else 'FAIL'} (exit {comp.get('exit')}, "
                 f"{comp.get('quantized_ops')} ops, {fmt(comp.get('seconds'), '.0f')} s)")
            if not comp["pass"]:
                c += f": {comp.get('reason', '')}"
            dp = comp.get("onnxruntime_differing_predictions")
            a = "—" if dp is None else f"{dp} / {comp.get('compared')}"
            if dp is not None and comp.get("onnxruntime_compared_pixels"):
                a += " pixels"
        rows.append(f"| {name} | {input_desc(MODELS[name][1])} | {i.replace('|', '/')} | "
                    f"{c.replace('|', '/')} | {a} |")
    # Details: infer's numbers and each compress run's metric (teacher, fake-quant
    # student, slimtrain running the export, ONNX Runtime running it).
    rows += ["", "| model | infer max abs diff | max \\|out\\| | output | metric: teacher / "
             "student / export / ORT |", "|---|---|---|---|---|"]
    for name, (inf, comp) in results.items():
        m = (comp or {}).get("metric", "top1")
        vals = "—" if not comp else f"{m}: " + " / ".join(
            fmt(comp.get(k + m), ".4g") for k in ("teacher_", "student_", "export_", "onnxruntime_"))
        rows.append(f"| {name} | {fmt(inf.get('max_abs_diff'))} | {fmt(inf.get('max_abs_out'))} "
                    f"| {inf.get('shape', '—')} | {vals} |")
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("work_dir")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--table", default="", help="write the markdown table here")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per command")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(SOURCE_DIR, "node_modules", "onnxruntime-node")) \
            or shutil.which("node") is None:
        print("SKIP: node or onnxruntime-node missing (npm install --ignore-scripts)")
        return 77
    binary = os.path.abspath(args.binary)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    t_start = time.time()
    results, ok = {}, True
    for name in names:
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        try:
            model, pb = export(name, d)
        except Exception as e:  # noqa: BLE001 - one model never stops the others
            with open(os.path.join(d, "export.log"), "w") as f:
                f.write(traceback.format_exc())
            inf = {"stage": "infer", "pass": False,
                   "reason": f"torch.onnx.export: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            results[name] = (inf, None)
            print(line(name, inf), flush=True)
            ok = False
            continue
        inf = infer_stage(binary, name, d, model, pb, args.timeout)
        print(line(name, inf), flush=True)
        comp = compress_stage(binary, name, d, args.timeout)
        print(line(name, comp), flush=True)
        results[name] = (inf, comp)
        ok = ok and inf["pass"] and comp.get("exit") == 0
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({n: {"infer": i, "compress": c} for n, (i, c) in results.items()}, f, indent=1)
    t = table(results)
    if args.table:
        with open(args.table, "w") as f:
            f.write(t)
        print(f"table written to {args.table}")
    else:
        print(t)
    print(f"{len(names)} models in {time.time() - t_start:.0f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
