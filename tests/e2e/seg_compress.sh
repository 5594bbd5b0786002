# Segmentation end to end: a small segmentation net trained by PyTorch on a
# synthetic task (tests/e2e/seg_torch.py: shapes on gradients, 4 classes,
# 32x32, boundaries labelled 255) and exported the default way (BN folded)
# is evaluated by slimtrain with PyTorch's mIoU, then compressed with QAT +
# PACT, GMP (50 % of every conv weight) and l2 distillation on the logits:
# report.json names the metric (miou), the fake-quant student's mIoU is
# within 2 points of the teacher's, and ONNX Runtime running the INT8 export
# agrees with slimtrain pixel by pixel (per-pixel argmax). Then the same
# data without labels (HDF5 x only): a short compress scores distill_loss.
# Usage: seg_compress.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
/usr/bin/python3 -c 'import torch, onnx, h5py' 2> /dev/null ||
  { echo "SKIP: /usr/bin/python3 lacks torch/onnx/h5py (Debian python3-torch, python3-onnx, python3-h5py)"; exit 77; }
need_ort
OUT=$PWD/seg_compress; rm -rf "$OUT"; mkdir -p "$OUT"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/seg_torch.py" "$OUT/teacher" | tee "$OUT/torch.log"
cat > "$OUT/seg.yaml" <<EOF
Global:
  model_dir: $OUT/teacher
  model_filename: model.onnx
  batch_size: 32
  eval_batch_size: 128
  seed: 1
  save_dir: $OUT/act
  Data:
    format: hdf5
    train_images: $OUT/teacher/train.h5
    eval_images: $OUT/teacher/eval.h5
    mean: [0.5]
    std: [0.25]
Quantization:
  use_pact: true
  activation_bits: 8
  weight_bits: 8
  activation_quantize_type: range_abs_max
  weight_quantize_type: channel_wise_abs_max
  quantize_op_types: [conv2d, depthwise_conv2d, mul]
Distillation:
  distill_loss: l2_loss
  distill_node_pair: [teacher_logits, logits]
  distill_lambda: 1.0
UnstructurePrune:
  prune_strategy: gmp
  prune_mode: ratio
  pruned_ratio: 0.5
  gmp_config:
    stable_iterations: 0
    pruning_iterations: 128
    tunning_iterations: 128
    resume_iteration: -1
    pruning_steps: 8
    initial_ratio: 0.1
  prune_params_type: None
  local_sparsity: true
TrainConfig:
  epochs: 4
  eval_iter: 64
  logging_iter: 16
  learning_rate:
    type: CosineAnnealingDecay
    learning_rate: 0.005
    T_max: 256
  optimizer: Momentum
  optim_args:
    momentum: 0.9
    weight_decay: 1.0e-5
EOF
"$BIN" eval "$OUT/seg.yaml" --model "$OUT/teacher/model.onnx" | tail -1 > "$OUT/eval.json"
cat "$OUT/eval.json"
"$BIN" compress "$OUT/seg.yaml" > "$OUT/compress.log"
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
torch_ = json.load(open(f"{out}/teacher/torch.json"))
ev = json.loads(open(f"{out}/eval.json").read())
rep = json.load(open(f"{out}/act/report.json"))
print(f"teacher mIoU: PyTorch {torch_['miou']:.4f}, slimtrain eval {ev['miou']:.4f} "
      f"(pixel accuracy {torch_['pixel_acc']:.4f} / {ev['pixel_acc']:.4f})")
assert ev["metric"] == "miou", ev
assert torch_["miou"] > 0.8, f"the PyTorch teacher did not learn the task: mIoU {torch_['miou']}"
assert abs(ev["miou"] - torch_["miou"]) <= 0.002, "slimtrain's mIoU of the teacher differs from PyTorch's"
assert rep["metric"] == "miou", rep.get("metric")
t, s = rep["teacher_miou"], rep["student_miou"]
print(f"compress: teacher mIoU {t:.4f}, student (fake-quant, 50 % sparse) {s:.4f}, "
      f"gap {100 * (t - s):.2f} points; pixel accuracy {rep['teacher_pixel_acc']:.4f} -> "
      f"{rep['student_pixel_acc']:.4f}; sparsity {rep['sparsity']['overall']:.4f}")
assert abs(t - ev["miou"]) < 1e-9, "compress's teacher mIoU differs from eval's"
assert t - s <= 0.02, f"student mIoU {100 * (t - s):.2f} points below the teacher (> 2)"
assert "onnxruntime_check" not in rep, rep.get("onnxruntime_check")
o, e = rep["onnxruntime_miou"], rep["export_miou"]
d, n = rep["onnxruntime_differing_predictions"], rep["onnxruntime_compared_pixels"]
print(f"INT8 export: slimtrain mIoU {e:.4f}, ONNX Runtime {o:.4f}; {d} of {n} pixels differ "
      f"({rep['onnxruntime_differing_samples']} samples); size ratio {rep['size_ratio']:.2f}")
assert n == 512 * 32 * 32, n
assert d <= n // 1000, f"{d} of {n} pixel predictions differ between slimtrain and ONNX Runtime"
assert abs(o - e) <= 0.001, "ONNX Runtime mIoU more than 0.1 point from slimtrain's on the same file"
assert abs(o - s) <= 0.005, "ONNX Runtime mIoU more than 0.5 point from the fake-quant eval"
keys = set()
for line in open(f"{out}/act/metrics.jsonl"):
    keys |= set(json.loads(line))
for k in ("eval_miou", "eval_pixel_acc", "eval_teacher_miou"):
    assert k in keys, f"metrics.jsonl has no {k}"
assert "eval_top1" not in keys
html = open(f"{out}/act/report.html").read()
assert 'data-key="student_miou"' in html and "mIoU" in html, "report.html does not name mIoU"
PY
# Unlabelled data (HDF5 with x only): compress distils without labels and
# scores the distillation loss (lower is better); a short run.
/usr/bin/python3 - "$OUT" <<'PY'
import h5py, sys
out = sys.argv[1]
for split in ("train", "eval"):
    with h5py.File(f"{out}/teacher/{split}.h5") as f, h5py.File(f"{out}/{split}_x.h5", "w") as g:
        g.create_dataset("x", data=f["x"][:256])
PY
sed -e "s#$OUT/teacher/train.h5#$OUT/train_x.h5#; s#$OUT/teacher/eval.h5#$OUT/eval_x.h5#" \
    -e "s#save_dir: .*#save_dir: $OUT/unlabelled#; s#epochs: 4#train_iter: 24#; s#eval_iter: 64#eval_iter: 8#" \
    -e "s#pruning_iterations: 128#pruning_iterations: 22#; s#tunning_iterations: 128#tunning_iterations: 2#" \
    -e "s#pruning_steps: 8#pruning_steps: 2#" "$OUT/seg.yaml" > "$OUT/unlabelled.yaml"
"$BIN" compress "$OUT/unlabelled.yaml" > "$OUT/unlabelled.log"
/usr/bin/python3 - "$OUT" <<'PY'
import json, math, sys
out = sys.argv[1]
rep = json.load(open(f"{out}/unlabelled/report.json"))
print(f"unlabelled: metric {rep['metric']}, student distill_loss {rep['student_distill_loss']:.6f}, "
      f"teacher {rep['teacher_distill_loss']}, ONNX Runtime differing pixels "
      f"{rep['onnxruntime_differing_predictions']}")
assert rep["metric"] == "distill_loss"
assert rep["teacher_distill_loss"] == 0
assert math.isfinite(rep["student_distill_loss"]) and rep["student_distill_loss"] > 0
# The labelled run's tolerance: a pixel whose two best classes are within
# one requantization step of each other may flip between slimtrain's float
# arithmetic on the dequantized values and ONNX Runtime's integer kernels.
d, n = rep["onnxruntime_differing_predictions"], 256 * 32 * 32  # eval_x.h5's pixels
assert "onnxruntime_check" not in rep and d is not None, rep.get("onnxruntime_check")
assert d <= n // 1000, f"{d} of {n} pixel predictions differ between slimtrain and ONNX Runtime"
lines = [json.loads(l) for l in open(f"{out}/unlabelled/metrics.jsonl")]
assert any("eval_distill_loss" in l for l in lines), "metrics.jsonl has no eval_distill_loss"
print("PASS")
PY
