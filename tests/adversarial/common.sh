# Helpers shared by the adversarial scripts (on top of tests/e2e/common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/common.sh"
PY=/usr/bin/python3
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)

# expect RC PATTERN... -- COMMAND...: runs COMMAND (output in $LOG, default
# $OUT/last.log), fails unless it exits RC and its output matches every
# extended-regex PATTERN. A signal exit (>= 128) is always a failure.
expect() {
  local want=$1; shift
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done
  shift
  local log=${LOG:-$OUT/last.log}
  set +e; timeout -k 5 "${EXPECT_TIMEOUT:-120}" "$@" > "$log" 2>&1; local rc=$?; set -e
  [ "$rc" != 124 ] || { tail -5 "$log"; fail "no exit within ${EXPECT_TIMEOUT:-120} s: $*"; }
  [ "$rc" = "$want" ] || { tail -15 "$log"; fail "exit $rc, expected $want: $*"; }
  local p
  for p in "${pats[@]}"; do
    grep -Eq -- "$p" "$log" || { tail -15 "$log"; fail "output lacks /$p/: $*"; }
  done
  echo "ok: exit $rc: $(grep -Ei -m1 'error|warn' "$log" | cut -c1-200)"
}

# tiny_idx DIR [LABEL_ROW LABEL]: 64 training and 32 evaluation images of
# Fashion-MNIST as IDX files in DIR, optionally with one training label
# replaced (to make a label the model cannot have).
tiny_idx() {
  "$PY" - "$@" <<'EOF'
import gzip, sys
out = sys.argv[1]
for part, n, tag in (("train", 64, "tr"), ("t10k", 32, "ev")):
    for kind, head in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
        raw = gzip.open(f"/usr/share/datasets/fashion-mnist/{part}-{kind}.gz").read()
        row = 784 if kind.startswith("images") else 1
        b = bytearray(raw[:head] + raw[head:head + n * row])
        b[4:8] = n.to_bytes(4, "big")
        if len(sys.argv) > 2 and tag == "tr" and kind.startswith("labels"):
            b[head + int(sys.argv[2])] = int(sys.argv[3])
        gzip.open(f"{out}/{tag}-{kind}.gz", "wb").write(bytes(b))
EOF
}

# small_config FILE DATA_DIR SAVE_DIR: a 4-iteration QAT + distillation job
# on tiny_idx data (zoo model, checkpoint every 2 iterations).
small_config() {
  cat > "$1" <<EOF
Global:
  model: zoo:mobilenet_tiny
  batch_size: 16
  seed: 3
  save_dir: $3
  Data:
    train_images: $2/tr-images-idx3-ubyte.gz
    train_labels: $2/tr-labels-idx1-ubyte.gz
    eval_images: $2/ev-images-idx3-ubyte.gz
    eval_labels: $2/ev-labels-idx1-ubyte.gz
    mean: [0.2860]
    std: [0.3530]
Checkpoint:
  every_iters: 2
  keep_last: 10
Quantization:
  weight_bits: 8
  activation_bits: 8
Distillation:
  distill_loss: l2_loss
  distill_node_pair: [teacher_logits, logits]
  distill_lambda: 1.0
TrainConfig:
  train_iter: 4
  eval_iter: 1000
  logging_iter: 1
  learning_rate: 0.001
EOF
}
