# Exact deploy-time evaluation (docs/QUANTIZATION.md): configs/fmnist_act.yaml
# compresses a teacher trained and exported by PyTorch with BatchNormalization
# folded into the convolutions (every conv and the linear layer carry a
# bias), on 1 rank x 64 and on 2 ranks x 32 (mpirun). Each run must exit 0
# with fake-quant top-1 == slimtrain running model.onnx == ONNX Runtime top-1
# and 0 predictions where ONNX Runtime and slimtrain differ, and the two runs
# must end with bit-identical checkpoints.
# Usage: exact_eval.sh SLIMTRAIN [ITERATIONS [TEACHER_EPOCHS]]
#   full (label long): 300 iterations on a 1-epoch teacher (the issue's run);
#   the default suite runs 30 iterations on a 0.2-epoch teacher.
source "$(dirname "$0")/common.sh"
BIN=$1; ITERS=${2:-300}; EPOCHS=${3:-1}
need_data; need_ort
/usr/bin/python3 -c 'import torch, onnx' 2> /dev/null ||
  { echo "SKIP: /usr/bin/python3 lacks torch/onnx (Debian python3-torch, python3-onnx)"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: mpirun missing"; exit 77; }
OUT=$PWD/exact_eval_$ITERS; rm -rf "$OUT"; mkdir -p "$OUT"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/torch_teacher.py" "$OUT/teacher" "$EPOCHS" fold \
  > "$OUT/torch.log" 2>&1 || { cat "$OUT/torch.log"; fail "PyTorch teacher failed"; }
tail -1 "$OUT/torch.log"
/usr/bin/python3 - "$OUT/teacher/model.onnx" <<'PY'
import sys, onnx
m = onnx.load(sys.argv[1])
ops = [n.op_type for n in m.graph.node]
convs = [n for n in m.graph.node if n.op_type == "Conv"]
assert "BatchNormalization" not in ops, "the teacher still has BatchNormalization"
assert convs and all(len(n.input) == 3 for n in convs), "a folded conv lacks its bias"
print(f"teacher: {len(convs)} convs with bias, no BatchNormalization")
PY
# The config's own learning rate: the folded convolutions get their batch
# norms back (TrainConfig.renormalize_convs). Before that, 0.02 diverged on
# this BN-free student and the test ran at 0.002.
ARGS=(--set Global.model_dir="$OUT/teacher" --set TrainConfig.train_iter="$ITERS"
      --set Checkpoint.resume=never)
"$BIN" compress "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" "${ARGS[@]}" \
  --set Global.save_dir="$OUT/one" > "$OUT/one.log" 2>&1 ||
  { rc=$?; tail -20 "$OUT/one.log"; fail "1-rank run exited $rc"; }
mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" compress \
  "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" "${ARGS[@]}" --set Global.batch_size=32 \
  --set Global.save_dir="$OUT/two" > "$OUT/two.log" 2>&1 ||
  { rc=$?; tail -20 "$OUT/two.log"; fail "2-rank run exited $rc"; }
/usr/bin/python3 - "$OUT/one/report.json" "$OUT/two/report.json" <<'PY'
import json, sys
for path, what in zip(sys.argv[1:], ("1 rank x 64", "2 ranks x 32")):
    r = json.load(open(path))
    s, e, o = r["student_top1"], r["export_top1"], r["onnxruntime_top1"]
    d = r["onnxruntime_differing_predictions"]
    print(f"{what}, {r['iterations']} iterations: fake-quant top-1 {s:.4f}, slimtrain on "
          f"model.onnx {e:.4f}, ONNX Runtime {o:.4f}, differing predictions {d}")
    assert o is not None, f"{what}: ONNX Runtime did not run: {r.get('onnxruntime_check')}"
    assert s == e == o, f"{what}: top-1 differ (fake-quant {s}, export {e}, ORT {o})"
    assert d == 0, f"{what}: {d} differing predictions, first {r.get('onnxruntime_first_difference')}"
PY
# The bias simulation keeps data parallelism exact: the same final state.
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$(ls "$OUT"/one/checkpoints/ckpt-*.h5 | tail -1)" \
  "$(ls "$OUT"/two/checkpoints/ckpt-*.h5 | tail -1)" --exact
echo "PASS"
