#!/usr/bin/python3
"""Every opset a user's exporter may write: the zoo's models exported by
torch.onnx.export at opsets 11 to 17 (Debian's PyTorch 1.13 writes up to 17;
Paddle2ONNX writes 11 by default) and run by `slimtrain infer` against ONNX
Runtime, as tests/e2e/zoo.py does at opset 13 (same models, inputs and
tolerance: max |slimtrain - ORT| / max |ORT| <= 1e-4).

Between these opsets the exporters move attributes to inputs (Squeeze,
Unsqueeze, ReduceSum and Split axes at 13; Clip's min/max at 11), change
Softmax's axis semantics (13), add BatchNormalization's training_mode (14,
15) and Resize's modes; a model at any of them must import and compute the
same as at 13.

usage: opsets.py SLIMTRAIN WORK_DIR [--opsets 11,12,14,15,16,17] [--only NAME,...]
                 [--table FILE]
Prints one line per model and opset and a markdown table (rows: models,
columns: opsets). Exit 0 when every infer passed, 1 otherwise, 77 (skip)
without the Python packages or onnxruntime-node.
"""
import argparse
import os
import shutil
import sys
import time
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402 - exits 77 itself without torch/onnx/h5py


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("work_dir")
    ap.add_argument("--opsets", default="11,12,14,15,16,17")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--table", default="", help="write the markdown table here")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per command")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # the exporter's shape-inference chatter
    opsets = [int(o) for o in args.opsets.split(",") if o]
    names = [n for n in args.only.split(",") if n] or list(zoo.MODELS)
    unknown = [n for n in names if n not in zoo.MODELS]
    if unknown:
        print(f"unknown model(s) {unknown}; known: {', '.join(zoo.MODELS)}", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(zoo.SOURCE_DIR, "node_modules", "onnxruntime-node")) \
            or shutil.which("node") is None:
        print("SKIP: node or onnxruntime-node missing (npm install --ignore-scripts)")
        return 77
    binary = os.path.abspath(args.binary)
    work = os.path.abspath(args.work_dir)
    zoo.torch.set_num_threads(min(4, os.cpu_count() or 1))
    t0 = time.time()
    cells, ok = {}, True
    for name in names:
        for opset in opsets:
            d = os.path.join(work, f"{name}_opset{opset}")
            os.makedirs(d, exist_ok=True)
            try:
                model, pb = zoo.export(name, d, opset)
            except Exception as e:  # noqa: BLE001 - an exporter limit, recorded
                with open(os.path.join(d, "export.log"), "w") as f:
                    f.write(traceback.format_exc())
                msg = str(e).splitlines()[0] if str(e) else ""
                r = {"pass": None, "reason": f"torch.onnx.export: {type(e).__name__}: {msg}"}
            else:
                r = zoo.infer_stage(binary, name, d, model, pb, args.timeout)
                ok = ok and r["pass"]
            cells[(name, opset)] = r
            if r["pass"] is None:
                status = f"EXPORT FAILED (PyTorch's limit, not judged): {r['reason']}"
            elif r["pass"]:
                status = f"PASS: rel {r['rel_diff']:.2g}"
            else:
                status = f"FAIL: {r.get('reason', '')}"
            print(f"{name} opset {opset}: {status}", flush=True)
    rows = ["| model | " + " | ".join(f"opset {o}" for o in opsets) + " |",
            "|---|" + "---|" * len(opsets)]
    for name in names:
        row = []
        for o in opsets:
            r = cells[(name, o)]
            if r["pass"] is None:
                row.append("export fails")
            elif r["pass"]:
                row.append(f"pass {r['rel_diff']:.1g}")
            else:
                row.append("FAIL: " + r.get("reason", "").replace("|", "/")[:80])
        rows.append(f"| {name} | " + " | ".join(row) + " |")
    t = "\n".join(rows) + "\n"
    if args.table:
        with open(args.table, "w") as f:
            f.write(t)
    print(t)
    print(f"{len(names)} models x {len(opsets)} opsets in {time.time() - t0:.0f} s: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
