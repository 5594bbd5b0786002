#!/usr/bin/python3
"""Damaged models against `inspect`, `infer` and `compress`.

make_damaged_models.py writes the cases; each command on each case must end
with the expected exit code (2 for every damaged file, 0 for the intact
control), within a time limit (no hang), without a signal (no crash), and
with a message naming the file and, for a truncated or corrupt protobuf,
the byte offset of the damaged field.

Usage: damaged_models.py SLIMTRAIN WORK_DIR
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
from onnx import numpy_helper

BIN, WORK = sys.argv[1], sys.argv[2]
SRC = os.environ.get("SLIM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TIMEOUT_S = 60
if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    sys.exit("FAIL: Fashion-MNIST missing; install dataset-fashion-mnist")

MODELS = os.path.join(WORK, "models")
subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "make_damaged_models.py"),
                SRC, MODELS], check=True)
cases = json.load(open(os.path.join(MODELS, "cases.json")))

x = numpy_helper.from_array(np.random.default_rng(0).random((1, 1, 28, 28), np.float32), "x")
x_pb = os.path.join(WORK, "x.pb")
with open(x_pb, "wb") as f:
    f.write(x.SerializeToString())
config = os.path.join(WORK, "compress.yaml")
with open(config, "w") as f:
    f.write(f"""Global:
  model_dir: {MODELS}
  model_filename: cnn_intact.onnx
  batch_size: 16
  seed: 1
  save_dir: {WORK}/out
  Data:
    train_images: {MODELS}/tr-images-idx3-ubyte.gz
    train_labels: {MODELS}/tr-labels-idx1-ubyte.gz
    eval_images: {MODELS}/ev-images-idx3-ubyte.gz
    eval_labels: {MODELS}/ev-labels-idx1-ubyte.gz
    mean: [0.2860]
    std: [0.3530]
Checkpoint: {{resume: never}}
Quantization: {{weight_bits: 8, activation_bits: 8}}
Distillation: {{distill_loss: l2_loss, distill_lambda: 1.0}}
TrainConfig:
  train_iter: 2
  logging_iter: 1
  learning_rate: 0.001
""")


def command(cmd, case, i):
    out = os.path.join(WORK, "out", f"{case['name']}_{cmd}")
    if cmd == "inspect":
        return [BIN, "inspect", case["file"]]
    if cmd == "infer":
        return [BIN, "infer", case["file"], "--input", x_pb, "--output-dir", out]
    return [BIN, "compress", config, "--set", f"Global.model_dir={os.path.dirname(case['file'])}",
            "--set", f"Global.model_filename={os.path.basename(case['file'])}",
            "--set", f"Global.save_dir={out}"]


env = dict(os.environ, SLIM_ORT_SCRIPT="/nonexistent", OMP_NUM_THREADS="1")
failures, runs, t0 = [], 0, time.monotonic()
for i, case in enumerate(cases):
    for cmd in case["commands"]:
        runs += 1
        argv = command(cmd, case, i)
        what = f"{case['name']} {cmd}"
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            failures.append(f"{what}: no exit within {TIMEOUT_S} s (hang)")
            continue
        msg = p.stderr + p.stdout
        last = [ln for ln in msg.splitlines() if "error" in ln.lower()][-1:] or [msg[-300:]]
        if p.returncode < 0 or p.returncode >= 128:
            failures.append(f"{what}: killed by a signal (exit {p.returncode}): {msg[-500:]}")
            continue
        if p.returncode != case["expect"]:
            failures.append(f"{what}: exit {p.returncode}, expected {case['expect']}: {last[0]}")
            continue
        if case["expect"] == 0:
            if cmd == "infer" and not os.path.exists(os.path.join(argv[-1], "output_0.pb")):
                failures.append(f"{what}: exit 0 but no output_0.pb")
            print(f"ok   {what}: exit 0")
            continue
        # The message names the file (the folder for a Paddle pair) ...
        named = case["file"] in msg or os.path.dirname(case["file"]) in msg
        if not named:
            failures.append(f"{what}: the message does not name {case['file']}: {last[0]}")
            continue
        # ... and where the bytes went wrong.
        if case.get("offset") is not None:
            size = os.path.getsize(case["file"])
            want = f"byte offset {case['offset']} of {size}"
            if want not in msg:
                failures.append(f"{what}: the message lacks '{want}': {last[0]}")
                continue
        if case.get("need") and case["need"] not in msg:
            failures.append(f"{what}: the message lacks '{case['need']}': {last[0]}")
            continue
        print(f"ok   {what}: exit 2: {last[0][:160]}")

n_onnx = sum(c["format"] == "onnx" for c in cases)
print(f"{len(cases)} models ({n_onnx} ONNX, {len(cases) - n_onnx} Paddle), {runs} runs, "
      f"{time.monotonic() - t0:.1f} s")
if len(cases) < 51:
    failures.append(f"only {len(cases)} model cases (at least 50 damaged + the control)")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
