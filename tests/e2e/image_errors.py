#!/usr/bin/env python3
"""Every bad-data case of tests/data/make_image_sets.py (broken/cases.json)
run through `slimtrain eval`: errors exit 2 with a message naming the list
file and line or the image/folder path; with skip_bad_images an unreadable
image is skipped and counted instead; the well-formed odd cases load. Also:
the same Fashion-MNIST pixels stored as uint8 and as float32 in [0, 1]
(HDF5) give the same top-1, and damaged .gz IDX files are errors.

Usage: image_errors.py SLIMTRAIN DATA_DIR CNN_ONNX
"""
import json
import os
import subprocess
import sys

BIN, DATA, CNN = sys.argv[1:4]
BROKEN = os.path.join(DATA, "broken")
WORK = os.path.join(os.getcwd(), "image_errors")
os.makedirs(WORK, exist_ok=True)
FMNIST = "/usr/share/datasets/fashion-mnist"
failures = []


def run_eval(name, data_yaml, model_yaml):
    cfg = os.path.join(WORK, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("Global:\n" + model_yaml + "  batch_size: 2\n  Data:\n" + data_yaml +
                "TrainConfig: {epochs: 1}\n")
    p = subprocess.run([BIN, "eval", cfg], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


CNN_MODEL = f"  model_dir: {os.path.dirname(CNN)}\n  model_filename: {os.path.basename(CNN)}\n"
IMG = "    img_size: 32\n    resize_size: 36\n"


def check(case, rc, out, want_rc, needles):
    ok = rc == want_rc and all(n in out for n in needles)
    last = [l for l in out.strip().splitlines() if l][-1:] or [""]
    print(f"{'ok  ' if ok else 'FAIL'} {case}: exit {rc} -- {last[0][:160]}")
    if not ok:
        failures.append(f"{case}: expected exit {want_rc} and {needles}, got exit {rc}:\n{out}")


cases = json.load(open(os.path.join(BROKEN, "cases.json")))
for c in cases:
    name, lst, line, path = c["case"], c["list"], c["line"], c["path"]
    if name.startswith("gzip_"):
        continue
    if lst:
        lp = os.path.join(BROKEN, lst)
        data = (f"    format: list\n    train_images: {lp}\n    eval_images: {lp}\n"
                f"    root: {BROKEN}\n" + IMG)
        want = [f"{lst}:{line}"] if line else [lst]
        if path and line:
            want.append(path)
    else:
        folder = os.path.join(BROKEN, path.split("/")[0])  # the ImageFolder root
        data = f"    format: imagefolder\n    train_images: {folder}\n    eval_images: {folder}\n" + IMG
        want = [path]
    rc, out = run_eval(name, data, CNN_MODEL)
    if c["expect"] == "ok":
        check(name, rc, out, 0, ['"top1"'])
        continue
    if name == "label_out_of_range":
        want.append("label 99")
    check(name, rc, out, 2, want)
    # An unreadable image is skipped and counted with skip_bad_images.
    if lst and path and name not in ("one_token", "three_tokens", "non_integer_label",
                                     "float_label", "negative_label", "label_out_of_range"):
        rc, out = run_eval(name + "_skip", data + "    skip_bad_images: true\n", CNN_MODEL)
        check(name + " (skip_bad_images)", rc, out, 0, ['"bad_images_skipped": 1'])

# Damaged .gz IDX files: an error naming the file, not data.
for name, images, labels in [("gzip_bad_crc", "bad-crc-images-idx3-ubyte.gz", "bad-crc-labels-idx1-ubyte.gz"),
                             ("gzip_truncated", "truncated-images-idx3-ubyte.gz", "truncated-labels-idx1-ubyte.gz")]:
    im, lb = os.path.join(BROKEN, images), os.path.join(BROKEN, labels)
    data = (f"    train_images: {im}\n    train_labels: {lb}\n"
            f"    eval_images: {im}\n    eval_labels: {lb}\n")
    rc, out = run_eval(name, data, "  model: zoo:mobilenet_tiny\n")
    check(name, rc, out, 2, [images] + (["CRC"] if "crc" in name else []))

# The same pixels as uint8 and as float32 in [0, 1] give the same top-1.
tops = {}
for kind in ("u8", "f32"):
    h5 = os.path.join(DATA, f"fmnist_eval_{kind}.h5")
    data = (f"    format: hdf5\n    train_images: {h5}\n    eval_images: {h5}\n"
            "    mean: [0.2860]\n    std: [0.3530]\n")
    rc, out = run_eval("hdf5_" + kind, data, "  model: zoo:mobilenet_tiny\n  seed: 3\n")
    check("hdf5 " + kind, rc, out, 0, ['"top1"'])
    if rc == 0:
        tops[kind] = json.loads(out.strip().splitlines()[-1])["top1"]
print(f"HDF5 top-1: uint8 {tops.get('u8')}, float32 {tops.get('f32')}")
if tops.get("u8") is None or tops.get("u8") != tops.get("f32"):
    failures.append(f"uint8 and float32 HDF5 pixels give different top-1: {tops}")

if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print(f"all {len(cases)} data cases behave as documented")
