# A PyTorch CNN exported the default way (BN folded into the convs, conv
# biases) gets its batch norms back in compress (TrainConfig.renormalize_convs:
# auto): report.json counts the 9 hidden convolutions, the run is the same on
# 1 rank x 64 and 2 ranks x 32 (every checkpoint dataset identical, same
# model.onnx), and ONNX Runtime agrees with the INT8 export.
# Usage: renorm_folded.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
need_data; need_ort
/usr/bin/python3 -c 'import torch, onnx' 2> /dev/null ||
  { echo "SKIP: /usr/bin/python3 lacks torch/onnx (Debian python3-torch, python3-onnx)"; exit 77; }
OUT=$PWD/renorm_folded; rm -rf "$OUT"; mkdir -p "$OUT/folded"
/usr/bin/python3 - "$SLIM_SOURCE_DIR/tests/e2e" "$OUT/folded/model.onnx" <<'PY'
import sys
import onnx
import torch
sys.path.insert(0, sys.argv[1])
import torch_teacher as tt
torch.manual_seed(0)
m = tt.TinyNet()
m.train()
x = torch.randn(64, 1, 28, 28)
for _ in range(3):  # running statistics that are not the initial ones
    m(x)
m.eval()
torch.onnx.export(m, x[:2], sys.argv[2], opset_version=13, input_names=["image"],
                  output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}})
g = onnx.load(sys.argv[2])
tt.rename(g, [n for n in g.graph.node if n.op_type == "Relu"][-1].output[0], "pw_relu_4")
onnx.save(g, sys.argv[2])
assert not any(n.op_type == "BatchNormalization" for n in g.graph.node), "export kept BN"
PY
ARGS=(compress "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" --set Global.model_dir="$OUT/folded"
      --set TrainConfig.train_iter=10 --set TrainConfig.eval_iter=10 --set Checkpoint.resume=never)
"$BIN" "${ARGS[@]}" --set Global.save_dir="$OUT/np1" > "$OUT/np1.log" 2>&1 ||
  { tail -20 "$OUT/np1.log"; fail "1-rank run failed"; }
mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" "${ARGS[@]}" --set Global.batch_size=32 \
  --set Global.save_dir="$OUT/np2" > "$OUT/np2.log" 2>&1 || { tail -20 "$OUT/np2.log"; fail "2-rank run failed"; }
for r in np1 np2; do
  /usr/bin/python3 - "$OUT/$r/report.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
print(f"{sys.argv[1]}: renormalized_convs {rep['renormalized_convs']}, ONNX Runtime differing "
      f"{rep['onnxruntime_differing_predictions']}, top-1 {rep['student_top1']} / {rep['onnxruntime_top1']}")
assert rep["renormalized_convs"] == 9, "expected the 9 hidden convolutions renormalised"
assert rep["onnxruntime_top1"] is not None and rep["onnxruntime_differing_predictions"] == 0
PY
done
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$OUT/np1/checkpoints/ckpt-00000010.h5" \
  "$OUT/np2/checkpoints/ckpt-00000010.h5" --exact
cmp "$OUT/np1/model.onnx" "$OUT/np2/model.onnx" || fail "model.onnx differs between 1 and 2 ranks"
echo "PASS"
