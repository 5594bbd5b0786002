# A short FP32 training run writes model.onnx; slimtrain's own eval of that
# file, the training run's final eval and ONNX Runtime must report the same
# top-1 (the same number of correct test images).
source "$(dirname "$0")/common.sh"
BIN=$1
need_data; need_ort
OUT=$PWD/train_ort_parity; rm -rf "$OUT"
cfg="$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml"
"$BIN" train "$cfg" --set TrainConfig.train_iter=200 --set TrainConfig.eval_iter=200 \
  --set Global.save_dir="$OUT" > "$OUT.train.json"
train_json=$(tail -1 "$OUT.train.json")
eval_json=$("$BIN" eval "$cfg" --model "$OUT/model.onnx" | tail -1)
ort_json=$(ort_top1 "$OUT/model.onnx")
t=$(json_get "$train_json" top1); e=$(json_get "$eval_json" top1); o=$(json_get "$ort_json" top1)
echo "train-time eval top1 $t, slimtrain eval of model.onnx $e, ONNX Runtime $o"
/usr/bin/python3 - "$t" "$e" "$o" <<'PY'
import sys
t, e, o = map(float, sys.argv[1:])
assert t > 0.6, f"200 iterations should reach > 60% top-1 (measured 0.767), got {t}"
assert abs(t - e) < 1e-9, f"eval of the written model differs from training's eval: {t} vs {e}"
assert abs(e - o) <= 1e-4, f"ONNX Runtime top-1 {o} differs from slimtrain's {e}"
PY
[ -f "$OUT/metrics.jsonl" ] || fail "metrics.jsonl missing"
lines=$(wc -l < "$OUT/metrics.jsonl"); [ "$lines" -ge 3 ] || fail "metrics.jsonl has $lines lines"
echo "PASS"
