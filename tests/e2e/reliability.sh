# Failure modes a long cluster job meets, each with its documented exit code:
#  1. divergence: a learning rate that blows up after iteration 20 -> exit 3
#     within one iteration, the message names the last checkpoint (20), no
#     model.onnx; resuming that checkpoint with a lower rate finishes (exit 0);
#     the same on 2 ranks (every rank agrees, mpirun exits 3);
#  2. a checkpoint holding NaN weights is refused as a resume point (exit 2);
#  2b. Checkpoint.resume naming a missing file or a folder exits 2;
#  3. two jobs on one checkpoint directory: the second exits 2 naming the
#     first's PID and host, and the first finishes untouched.
# Usage: reliability.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
export SLIM_ORT_SCRIPT=/nonexistent  # the ONNX Runtime check is tested elsewhere
OUT=$PWD/reliability; rm -rf "$OUT"; mkdir -p "$OUT"
cfg="$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml"
blowup='TrainConfig.learning_rate={type: PiecewiseDecay, boundaries: [20], values: [0.01, 1.0e8]}'
calm='TrainConfig.learning_rate={type: PiecewiseDecay, boundaries: [20], values: [0.01, 0.001]}'
expect_rc() {  # expect_rc WANT LOG COMMAND...
  local want=$1 log=$2; shift 2
  set +e; "$@" > "$log" 2>&1; local rc=$?; set -e
  [ "$rc" = "$want" ] || { tail -20 "$log"; fail "expected exit $want, got $rc: $*"; }
}

# 1. Divergence on 1 rank, then resume with a lower rate.
expect_rc 3 "$OUT/div.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/div" --set "$blowup"
grep -q "training diverged: the loss is not finite at iteration 2[1-9]" "$OUT/div.log" ||
  fail "no divergence message within the logging interval: $(grep error "$OUT/div.log")"
grep -q "ckpt-00000020.h5 (iteration 20)" "$OUT/div.log" || fail "the message does not name checkpoint 20"
[ ! -e "$OUT/div/model.onnx" ] || fail "a model was exported from diverged weights"
ls "$OUT/div/checkpoints" | grep -q "ckpt-00000030" && fail "a checkpoint after the divergence was written"
echo "diverged: $(grep -o 'training diverged.*iteration 20)' "$OUT/div.log")"
expect_rc 0 "$OUT/resume.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/div" --set "$calm" \
  --force-resume
grep -q "resumed from .*ckpt-00000020.h5" "$OUT/resume.log" || fail "did not resume checkpoint 20"
[ -e "$OUT/div/model.onnx" ] || fail "the resumed run wrote no model"
echo "resumed from checkpoint 20 with a lower learning rate: exit 0, model written"
expect_rc 3 "$OUT/div2.log" mpirun --allow-run-as-root --oversubscribe -np 2 -x SLIM_ORT_SCRIPT \
  "$BIN" compress "$cfg" --set Global.save_dir="$OUT/div2" --set Global.batch_size=16 --set "$blowup"
echo "2 ranks: mpirun exit 3, $(grep -c 'training diverged' "$OUT/div2.log") ranks reported the divergence"

# `checkpoint show --json` of the checkpoint the divergence named parses and
# says where the run stood.
"$BIN" checkpoint show "$OUT/div2/checkpoints/ckpt-00000020.h5" --json | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["step"] == 20 and c["world_size"] == 2, c
assert all(isinstance(t["shape"], list) for g in c["groups"].values() for t in g), "shapes"
print("checkpoint show --json: step", c["step"], "ranks", c["world_size"], "params", len(c["groups"]["params"]))'

# 2. NaN weights in a checkpoint: not a resume point.
mkdir -p "$OUT/nan/checkpoints"
cp "$OUT/div2/checkpoints/ckpt-00000020.h5" "$OUT/nan/checkpoints/"
/usr/bin/python3 - "$OUT/nan/checkpoints/ckpt-00000020.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    name = sorted(f["params"].keys())[0]
    d = f["params"][name]
    v = d[...]; v.flat[0] = np.nan; d[...] = v
EOF
expect_rc 2 "$OUT/nan.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/nan" --set "$calm"
grep -q "non-finite values" "$OUT/nan.log" || fail "no message about the non-finite checkpoint"
echo "NaN checkpoint refused: $(grep -o 'checkpoint .* holds non-finite values in [^ ]*' "$OUT/nan.log")"

# 2b. Checkpoint.resume naming a missing file or a folder: exit 2 naming the key.
expect_rc 2 "$OUT/resume_missing.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/rm" \
  --set Checkpoint.resume="$OUT/none.h5"
grep -q "Checkpoint.resume: .*none.h5 does not exist" "$OUT/resume_missing.log" || fail "no message naming Checkpoint.resume"
expect_rc 2 "$OUT/resume_dir.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/rm" \
  --set Checkpoint.resume="$OUT"
echo "Checkpoint.resume naming a missing file or a folder: exit 2"

# 3. Two jobs, one checkpoint directory.
"$BIN" compress "$cfg" --set Global.save_dir="$OUT/shared" > "$OUT/first.log" 2>&1 &
first=$!
for _ in $(seq 100); do [ -e "$OUT/shared/checkpoints/.slimtrain.lock" ] && break; sleep 0.1; done
sleep 0.5
expect_rc 2 "$OUT/second.log" "$BIN" compress "$cfg" --set Global.save_dir="$OUT/shared"
grep -q "pid $first" "$OUT/second.log" || fail "the refusal does not name the first job's PID $first"
wait "$first" || { tail "$OUT/first.log"; fail "the first job failed"; }
echo "second job on the same directory: exit 2 naming pid $first; the first finished"
echo "PASS"
