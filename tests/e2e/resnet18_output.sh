# A user's torchvision ResNet18 export (at 64x64, to keep it short) compressed
# with a config in ACT's form: the default output holds fewer than 20 lines
# before the first progress line (one summary line for the quantized ops and
# one for the distillation pairs, not one per op), and --quiet prints nothing
# but the final JSON summary; report.html's charts name layers, not the
# exporter's onnx::Conv_N weights. Usage: resnet18_output.sh SLIMTRAIN (label long)
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
PY=/usr/bin/python3
"$PY" -c 'import torch, torchvision, PIL' 2>/dev/null || { echo "SKIP: python3-torch/torchvision/pil missing"; exit 77; }
export SLIM_ORT_SCRIPT=/nonexistent  # the ONNX Runtime check is resnet18_act.sh's
OUT=$PWD/resnet18_output; rm -rf "$OUT"; mkdir -p "$OUT"
"$PY" "$SLIM_SOURCE_DIR/tests/data/make_image_sets.py" "$OUT/data" --train 64 --eval 16 > /dev/null
"$PY" - "$OUT/resnet18.onnx" <<'EOF'
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10).eval()
torch.onnx.export(m, torch.randn(1, 3, 64, 64), sys.argv[1], opset_version=13,
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
  img_size: 64
  resize_size: 72
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
  train_iter: 4
  eval_iter: 1000
  logging_iter: 2
  learning_rate: {type: CosineAnnealingDecay, learning_rate: 0.001, T_max: 4}
  optimizer_builder: {optimizer: {type: Momentum, momentum: 0.9}, weight_decay: 4.0e-5}
EOF
"$BIN" compress "$OUT/act.yaml" > "$OUT/run.out" 2> "$OUT/run.err" || { cat "$OUT/run.err"; fail "compress failed"; }
prog='^train +[0-9]+% [0-9]+/[0-9]+ \['
grep -qE "$prog" "$OUT/run.err" || fail "no progress line in the output"
before=$(awk -v re="$prog" '$0 ~ re {exit} {n++} END {print n+0}' "$OUT/run.err")
echo "resnet18: $before lines before the first progress line:"
awk -v re="$prog" '$0 ~ re {exit} {print "  | " $0}' "$OUT/run.err"
[ "$before" -lt 20 ] || fail "$before lines before the progress line (want < 20)"
rm -rf "$OUT/run"
"$BIN" compress "$OUT/act.yaml" --quiet > "$OUT/quiet.out" 2> "$OUT/quiet.err" ||
  { cat "$OUT/quiet.err"; fail "compress --quiet failed"; }
[ ! -s "$OUT/quiet.err" ] || { cat "$OUT/quiet.err"; fail "--quiet wrote to stderr"; }
[ "$(wc -l < "$OUT/quiet.out")" = 1 ] || fail "--quiet stdout is not one line"
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["command"] == "compress"' "$OUT/quiet.out" ||
  fail "--quiet stdout is not the JSON summary"
echo "--quiet: stderr empty, stdout one JSON line"
# The torch export names its folded weights onnx::Conv_N: the report's
# charts name the layers instead.
labels=$(grep -o 'class="\(bar-label\|legend\)"[^>]*><title>[^<]*' "$OUT/run/report.html" | sed 's/.*<title>//')
[ -n "$labels" ] || fail "no chart labels in report.html"
if grep -q '^onnx::' <<< "$labels"; then fail "chart labels with exporter names: $(grep '^onnx::' <<< "$labels" | head -3)"; fi
echo "report.html: $(wc -l <<< "$labels") chart labels, none an onnx:: name (e.g. $(sed -n 2p <<< "$labels"))"
echo "PASS"
