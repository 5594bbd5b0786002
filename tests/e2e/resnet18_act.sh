# A torchvision ResNet18 (exported by torch.onnx.export, input named
# `inputs`) compressed at 224x224 with a config in PaddleSlim ACT's own form:
# Global.data_dir with train/val lists of JPEG and PNG files, img_size,
# resize_size, input_name; Quantization + Distillation + UnstructurePrune +
# TrainConfig. Checks the run ends 0 and ONNX Runtime, running the INT8
# export on exactly the evaluated tensors, agrees on every sample.
# Usage: resnet18_act.sh SLIMTRAIN   (label long: minutes of 224x224 steps)
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
need_ort
PY=/usr/bin/python3
"$PY" -c 'import torch, torchvision, PIL' 2>/dev/null || { echo "SKIP: python3-torch/torchvision/pil missing"; exit 77; }
OUT=$PWD/resnet18_act; rm -rf "$OUT"; mkdir -p "$OUT"
"$PY" "$SLIM_SOURCE_DIR/tests/data/make_image_sets.py" "$OUT/data" --train 400 --eval 64 > /dev/null
"$PY" - "$OUT/resnet18.onnx" <<'EOF'
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=13,
                  input_names=["inputs"], output_names=["logits"],
                  dynamic_axes={"inputs": {0: "N"}, "logits": {0: "N"}})
EOF
cat > "$OUT/act.yaml" <<EOF
Global:
  input_name: inputs
  model_dir: $OUT
  model_filename: resnet18.onnx
  batch_size: 8
  data_dir: $OUT/data/act
  img_size: 224
  resize_size: 256
  save_dir: $OUT/run
Quantization:
  use_pact: true
  activation_quantize_type: moving_average_abs_max
  weight_quantize_type: channel_wise_abs_max
  quantize_op_types: [conv2d, depthwise_conv2d, mul]
Distillation:
  loss: l2
UnstructurePrune:
  prune_strategy: gmp
  ratio: 0.5
  prune_params_type: null
TrainConfig:
  train_iter: 12
  eval_iter: 1000
  logging_iter: 4
  learning_rate: {type: CosineAnnealingDecay, learning_rate: 0.001, T_max: 12}
  optimizer_builder: {optimizer: {type: Momentum, momentum: 0.9}, weight_decay: 4.0e-5}
EOF
"$BIN" compress "$OUT/act.yaml" > "$OUT/run.log" 2>&1 || { cat "$OUT/run.log"; fail "compress failed"; }
grep "done:" "$OUT/run.log" | tail -1
rep=$(cat "$OUT/run/report.json")
echo "resnet18 224: student $(json_get "$rep" student_top1), export $(json_get "$rep" export_top1)," \
     "ONNX Runtime $(json_get "$rep" onnxruntime_top1), differing $(json_get "$rep" onnxruntime_differing_predictions)," \
     "data wait $(json_get "$rep" data_wait_share), size ratio $(json_get "$rep" size_ratio)"
[ "$(json_get "$rep" onnxruntime_differing_predictions)" = 0 ] || fail "ONNX Runtime disagrees with the export"
[ "$(json_get "$rep" onnxruntime_top1)" = "$(json_get "$rep" export_top1)" ] || fail "ORT top-1 differs"
echo "PASS"
