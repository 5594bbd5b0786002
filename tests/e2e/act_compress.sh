# configs/fmnist_act.yaml (QAT + PACT, GMP to 75% on 1x1 convs, l2
# distillation on a feature map and the logits) compresses the pretrained
# mobilenet_tiny teacher: fake-quant student top-1 within 1.0 point of the
# teacher, every 1x1 conv weight exactly floor(0.75 N) zeros, the INT8 QDQ
# export within 0.1 point top-1 in ONNX Runtime and >= 3.2x smaller. With a 4th
# argument "np2" the full run is repeated on 2 ranks x 32 (mpirun): final
# top-1 within 0.3 points and, as batch reductions are world-size invariant,
# the same final checkpoint bytes.
# Usage: act_compress.sh SLIMTRAIN TEACHER_DIR [OUT_DIR] [np2]
source "$(dirname "$0")/common.sh"
BIN=$1; TEACHER_DIR=$2; OUT=${3:-$PWD/act_compress}; NP2=${4:-}
need_data; need_ort
[ -f "$TEACHER_DIR/model.onnx" ] || fail "teacher $TEACHER_DIR/model.onnx missing (e2e_pretrain_accuracy makes it)"
rm -rf "$OUT"
"$BIN" compress "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" --set Global.model_dir="$TEACHER_DIR" \
  --set Global.save_dir="$OUT" > "$OUT.log"
# MIN_SIZE_RATIO: 3.2 for a teacher with batch norms (4 floats a channel); a
# BN-folded teacher stores one bias a channel instead, so its ratio is lower.
/usr/bin/python3 - "$OUT/report.json" "$OUT/model.onnx" "${MIN_SIZE_RATIO:-3.2}" <<'PY'
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper
rep = json.load(open(sys.argv[1]))
t, s = rep["teacher_top1"], rep["student_top1"]
print(f"teacher top-1 {t:.4f}, student (fake-quant) top-1 {s:.4f}, gap {100 * (t - s):.2f} points")
print(f"quantized ops: {rep['quantized_ops']['count']}, sparsity overall {rep['sparsity']['overall']:.4f}")
assert t - s <= 0.01, f"student is {100 * (t - s):.2f} points below the teacher (> 1.0)"
o = rep.get("onnxruntime_top1")
assert o is not None, "report.json has no ONNX Runtime top-1 (parity gate skipped)"
print(f"INT8 QDQ export in ONNX Runtime: top-1 {o:.4f} ({100 * abs(o - s):.2f} points from fake-quant), "
      f"initializers {rep['teacher_initializer_bytes']} -> {rep['export_initializer_bytes']} bytes "
      f"({rep['size_ratio']:.2f}x)")
assert abs(o - s) <= 0.001 + 1e-9, "ONNX Runtime top-1 more than 0.1 point from the fake-quant eval"
min_ratio = float(sys.argv[3])
assert rep["size_ratio"] >= min_ratio, f"size ratio {rep['size_ratio']:.2f} < {min_ratio}"
m = onnx.load(sys.argv[2])
inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
producer = {o: n for n in m.graph.node for o in n.output}
def weight(name):
    """A Conv weight as stored: an initializer, or DequantizeLinear(q, scale, zp)
    of one (then (q - zp), which is zero exactly where the weight is)."""
    if name in inits:
        return inits[name], name
    dq = producer[name]
    assert dq.op_type == "DequantizeLinear", f"{name} comes from {dq.op_type}"
    q = inits[dq.input[0]].astype(np.int64)
    zp = inits[dq.input[2]].astype(np.int64) if len(dq.input) > 2 and dq.input[2] else 0
    if np.ndim(zp) == 1:
        zp = zp.reshape(-1, *([1] * (q.ndim - 1)))
    return q - zp, dq.input[0]
n1x1 = 0
for node in m.graph.node:
    if node.op_type != "Conv":
        continue
    w, wname = weight(node.input[1])
    if w.shape[2:] == (1, 1) and w.shape[1] > 1:  # pointwise, not depthwise
        n1x1 += 1
        zeros, n = int(np.sum(w == 0)), w.size
        print(f"  {wname}: {zeros}/{n} zeros (floor(0.75 N) = {int(0.75 * n)})")
        assert zeros == int(np.floor(0.75 * n)), f"{wname}: {zeros} zeros, expected {int(0.75 * n)}"
assert n1x1 == 4, f"expected 4 pointwise convs, found {n1x1}"
PY
if [ "$NP2" = np2 ]; then
  # The full run on 2 ranks x 32 (global batch 64): world-size-invariant
  # reductions make it the same run, so the same final state and top-1.
  mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" compress "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" \
    --set Global.model_dir="$TEACHER_DIR" --set Global.batch_size=32 --set Global.save_dir="$OUT.np2" \
    --set Checkpoint.resume=never > "$OUT.np2.log" 2>&1 || { tail -20 "$OUT.np2.log"; fail "2-rank run failed"; }
  /usr/bin/python3 - "$OUT/report.json" "$OUT.np2/report.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["student_top1"] for p in sys.argv[1:])
print(f"full run: 1 rank x 64 top-1 {a:.4f}, 2 ranks x 32 top-1 {b:.4f}")
assert abs(a - b) <= 0.003, f"top-1 differs by {100 * abs(a - b):.2f} points (> 0.3)"
PY
  /usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$(ls "$OUT"/checkpoints/ckpt-*.h5 | tail -1)" \
    "$(ls "$OUT".np2/checkpoints/ckpt-*.h5 | tail -1)" --exact
fi
echo "PASS"
