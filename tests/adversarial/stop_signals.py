#!/usr/bin/python3
"""Stop signals at every phase of a compress job, on 1 and 2 ranks.

Phases: startup (config/model/data loading), training, a mid-training
evaluation, the final evaluation, the export (its ONNX Runtime check) and a
checkpoint write. For each: the job exits 75, every checkpoint that existed
when the signal was sent is still there byte for byte, the stop checkpoint
loads, and running the same command again resumes and ends (exit 0) with a
final checkpoint and model.onnx identical to an uninterrupted run's.

One rank: SIGTERM or SIGUSR1 to slimtrain. Two ranks: under
scripts/slurm/slimtrain-mpirun, SIGTERM to the wrapper (mpirun forwards it
as SIGUSR1), or SIGTERM to every rank as SLURM's scancel does; mpirun's (and
the wrapper's) exit code must be 75.

With --quant-only: quantization + distillation without pruning, evaluated
every 4 iterations. Such a run exports the weights of its best evaluation,
so the checkpoints carry that best (schedule/best_*) and a resumed run must
export the same best weights as the uninterrupted one; the training stop
comes after an evaluation (iteration 14), and an evaluation cut short by the
signal runs again on resume.

Usage: stop_signals.py SLIMTRAIN WORK_DIR [--quant-only] [PHASE...]
"""
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

BIN, WORK = sys.argv[1], os.path.abspath(sys.argv[2])
QUANT_ONLY = "--quant-only" in sys.argv[3:]
ONLY = [a for a in sys.argv[3:] if a != "--quant-only"]
SRC = os.environ.get("SLIM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
WRAPPER = os.path.join(SRC, "scripts/slurm/slimtrain-mpirun")
FMNIST = "/usr/share/datasets/fashion-mnist"
TOTAL, LIMIT_S = 24, 240
os.makedirs(WORK, exist_ok=True)
if not os.path.exists(os.path.join(SRC, "node_modules/onnxruntime-node/package.json")):
    sys.exit("FAIL: onnxruntime-node missing (npm install --ignore-scripts); the export phase needs it")

# 512 training and 2000 evaluation images of Fashion-MNIST: an evaluation
# (and the export's ONNX Runtime check) lasts long enough to be signalled.
DATA = os.path.join(WORK, "data")
os.makedirs(DATA, exist_ok=True)
for part, n in (("train", 512), ("t10k", 2000)):
    for kind, head in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
        with gzip.open(f"{FMNIST}/{part}-{kind}.gz", "rb") as f:
            raw = f.read()
        row = 784 if kind.startswith("images") else 1
        b = bytearray(raw[:head + n * row])
        b[4:8] = n.to_bytes(4, "big")
        with gzip.open(os.path.join(DATA, f"{part}-{kind}.gz"), "wb", compresslevel=1) as f:
            f.write(bytes(b))

config = os.path.join(WORK, "stop_quant.yaml" if QUANT_ONLY else "stop.yaml")
PRUNE = """UnstructurePrune:
  prune_strategy: gmp
  pruned_ratio: 0.5
  gmp_config: {stable_iterations: 0, pruning_iterations: 16, tunning_iterations: 8,
               resume_iteration: -1, pruning_steps: 1, initial_ratio: 0.15}
  prune_params_type: conv1x1_only
"""
# The training stop lands after the evaluation at iteration 12 in quant-only
# mode, so the best evaluation is state the stop must carry over.
EVAL_ITER, TRAIN_STOP_AT = (4, 14) if QUANT_ONLY else (12, 3)
with open(config, "w") as f:
    f.write(f"""# {"QAT + distillation: exports the best evaluation's weights" if QUANT_ONLY else
      "QAT + GMP + distillation; GMP exports the final weights"}, so a resumed
# run must reproduce the uninterrupted run's model.onnx byte for byte.
Global:
  model: zoo:mobilenet_tiny
  batch_size: 32
  seed: 5
  Data:
    train_images: {DATA}/train-images-idx3-ubyte.gz
    train_labels: {DATA}/train-labels-idx1-ubyte.gz
    eval_images: {DATA}/t10k-images-idx3-ubyte.gz
    eval_labels: {DATA}/t10k-labels-idx1-ubyte.gz
    mean: [0.2860]
    std: [0.3530]
Checkpoint: {{every_iters: 4, keep_last: 20}}
Quantization: {{use_pact: true, weight_bits: 8, activation_bits: 8}}
Distillation: {{distill_loss: l2_loss, distill_node_pair: [teacher_logits, logits]}}
{"" if QUANT_ONLY else PRUNE}TrainConfig:
  train_iter: {TOTAL}
  eval_iter: {EVAL_ITER}
  logging_iter: 1
  learning_rate: {{type: CosineAnnealingDecay, learning_rate: 0.01, T_max: {TOTAL}}}
""")


def launch(np, save_dir, log):
    args = ["compress", config, "--set", f"Global.save_dir={save_dir}",
            "--set", f"Global.batch_size={32 // np}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if np == 1:
        return subprocess.Popen([BIN] + args, stdout=log, stderr=subprocess.STDOUT, env=env)
    return subprocess.Popen([WRAPPER, "--allow-run-as-root", "--oversubscribe", "-np", str(np),
                             BIN] + args, stdout=log, stderr=subprocess.STDOUT, env=env)


def ranks_of(p):
    """slimtrain processes under the wrapper (mpirun's children)."""
    out = subprocess.run(["pgrep", "-f", "-d", " ", f"^{BIN} compress {config}"],
                         capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def metrics_iters(save_dir):
    path = os.path.join(save_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    iters = []
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line being written
        if "loss" in d:
            iters.append(d["iter"])
    return iters


def checkpoints(save_dir):
    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in glob.glob(os.path.join(save_dir, "checkpoints", "ckpt-*.h5"))}


# Triggers: a predicate over (save_dir, log text) that is true once the job
# is inside the phase.
PHASES = {
    "startup": lambda d, log: "compress:" in log,
    "training": lambda d, log: any(i >= TRAIN_STOP_AT for i in metrics_iters(d)),
    "mid-eval": lambda d, log: 12 in metrics_iters(d),
    "final-eval": lambda d, log: os.path.exists(os.path.join(d, f"checkpoints/ckpt-{TOTAL:08d}.h5")),
    "export": lambda d, log: os.path.exists(os.path.join(d, "model.onnx")),
    "checkpoint-write": lambda d, log: bool(glob.glob(os.path.join(d, "checkpoints/ckpt-*.h5.tmp*"))),
}
# What the log must say about where the stop landed.
SAYS = {
    # A signal sent during startup is acted on at the first iteration boundary:
    # 0, or 1 when mpirun forwards it after the ranks took their first step.
    "startup": r"stop signal received: checkpointing at iteration [01]\b",
    "training": r"stop signal received: checkpointing at iteration",
    "mid-eval": "stop signal received: checkpointing at iteration 12",
    "final-eval": "stop signal during the final evaluation",
    "export": "stop signal during the ONNX Runtime check",
    "checkpoint-write": "stop signal received: checkpointing at iteration",
}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run_to_end(np, save_dir, name):
    with open(os.path.join(WORK, name + ".log"), "w") as log:
        p = launch(np, save_dir, log)
        rc = p.wait(timeout=LIMIT_S)
    text = open(os.path.join(WORK, name + ".log")).read()
    if rc != 0:
        fail(f"{name}: exit {rc}\n{text[-2000:]}")
    return text


def compare_to_reference(np, save_dir, name):
    ref = os.path.join(WORK, f"ref_np{np}")
    last = f"checkpoints/ckpt-{TOTAL:08d}.h5"
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "tests/e2e/h5compare.py"),
                    os.path.join(ref, last), os.path.join(save_dir, last), "--exact",
                    "--groups", "params,buffers,masks,quant,optimizer,schedule"], check=True,
                   stdout=subprocess.DEVNULL)
    if open(os.path.join(ref, "model.onnx"), "rb").read() != \
            open(os.path.join(save_dir, "model.onnx"), "rb").read():
        fail(f"{name}: model.onnx differs from the uninterrupted run's")
    reports = [json.load(open(os.path.join(x, "report.json"))) for x in (ref, save_dir)]
    for key in ("best_iter", "student_top1"):
        if reports[0].get(key) != reports[1].get(key):
            fail(f"{name}: report.json {key} {reports[1].get(key)}, the uninterrupted run's "
                 f"{reports[0].get(key)}")


def stop_case(np, phase, how):
    name = f"np{np}_{phase}"
    d = os.path.join(WORK, name)
    subprocess.run(["rm", "-rf", d])
    logpath = os.path.join(WORK, name + ".log")
    t0 = time.monotonic()
    with open(logpath, "w") as log:
        p = launch(np, d, log)
        while True:
            if p.poll() is not None:
                fail(f"{name}: the job ended (exit {p.returncode}) before the {phase} phase:\n"
                     + open(logpath).read()[-1500:])
            if PHASES[phase](d, open(logpath).read()):
                break
            if time.monotonic() - t0 > LIMIT_S:
                p.kill()
                fail(f"{name}: the {phase} phase never came")
            time.sleep(0.002)
        before = checkpoints(d)
        model_before = os.path.exists(os.path.join(d, "model.onnx"))
        if how == "wrapper":
            p.send_signal(signal.SIGTERM)
        elif how == "ranks":
            for pid in ranks_of(p):
                os.kill(pid, signal.SIGTERM)
        else:
            p.send_signal(how)
        sent = time.monotonic()
        try:
            rc = p.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            fail(f"{name}: no exit within {LIMIT_S} s of the signal")
    text = open(logpath).read()
    if rc != 75:
        fail(f"{name}: exit {rc} after the signal, expected 75\n{text[-2000:]}")
    if not re.search(SAYS[phase], text):
        fail(f"{name}: the log lacks '{SAYS[phase]}'\n{text[-1500:]}")
    if phase == "mid-eval" and "iter 12: eval" in text:
        fail(f"{name}: the evaluation at iteration 12 finished: the signal missed it")
    after = checkpoints(d)
    lost = [c for c, h in before.items() if after.get(c) != h]
    if lost:
        fail(f"{name}: checkpoints lost or changed by the stop: {lost}")
    if model_before and not os.path.exists(os.path.join(d, "model.onnx")):
        fail(f"{name}: model.onnx was written before the signal and is gone")
    newest = sorted(after)[-1]
    subprocess.run([BIN, "checkpoint", "show", os.path.join(d, "checkpoints", newest)], check=True,
                   stdout=subprocess.DEVNULL)
    stop_s = time.monotonic() - sent
    resumed = run_to_end(np, d, name + "_resume")
    if "resumed from" not in resumed:
        fail(f"{name}: the rerun did not resume")
    compare_to_reference(np, d, name)
    print(f"ok   {name} ({how}): exit 75 {stop_s:.2f} s after the signal, {len(before)} earlier "
          f"checkpoints intact, stop checkpoint {newest}; resumed to the same checkpoint and "
          "model.onnx", flush=True)


t0 = time.monotonic()
for np in (1, 2):
    # A fresh reference: one left by an earlier build would be resumed from,
    # its checkpoints those of the old binary.
    shutil.rmtree(os.path.join(WORK, f"ref_np{np}"), ignore_errors=True)
    run_to_end(np, os.path.join(WORK, f"ref_np{np}"), f"ref_np{np}")
    best = json.load(open(os.path.join(WORK, f"ref_np{np}", "report.json")))["best_iter"]
    print(f"uninterrupted run on {np} rank(s): best evaluation at iteration {best} of {TOTAL}",
          flush=True)
    # `slimtrain export` of the final checkpoint writes what compress wrote
    # (the best evaluation's weights in quant-only mode, the final ones with GMP).
    ref = os.path.join(WORK, f"ref_np{np}")
    subprocess.run([BIN, "export", ref, "--out", ref + ".export.onnx"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if open(ref + ".export.onnx", "rb").read() != open(os.path.join(ref, "model.onnx"), "rb").read():
        fail(f"slimtrain export {ref} differs from its model.onnx")
    ways = {1: [signal.SIGTERM, signal.SIGUSR1], 2: ["wrapper", "ranks"]}[np]
    for i, phase in enumerate(PHASES):
        if not ONLY or phase in ONLY:
            stop_case(np, phase, ways[i % 2])
print(f"PASS ({time.monotonic() - t0:.0f} s)")
