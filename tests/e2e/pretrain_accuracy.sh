# The default job's acceptance bar: configs/fmnist_pretrain.yaml (mobilenet_tiny,
# 3 epochs) reaches >= 91.0% test top-1, and ONNX Runtime agrees on model.onnx.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data; need_ort
OUT=$PWD/pretrain_accuracy; rm -rf "$OUT"
"$BIN" train "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" --set Global.save_dir="$OUT" > "$OUT.json"
train_json=$(tail -1 "$OUT.json")
ort_json=$(ort_top1 "$OUT/model.onnx")
t=$(json_get "$train_json" top1); o=$(json_get "$ort_json" top1)
echo "mobilenet_tiny 3 epochs: slimtrain top1 $t, ONNX Runtime top1 $o"
/usr/bin/python3 -c "import sys; t,o=$t,$o; assert t >= 0.91, f'top-1 {t} < 0.91'; assert abs(t-o) <= 1e-4, f'ORT {o} vs {t}'"
echo "PASS"
