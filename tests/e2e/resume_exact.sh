# Exact resume: a compression run (QAT + PACT + GMP + distillation) killed
# with SIGKILL at 5 points — after a forward pass, right after mask updates,
# in the middle of a checkpoint write — and resumed each time ends with a
# final checkpoint whose datasets are byte-identical to an uninterrupted run's.
# Usage: resume_exact.sh SLIMTRAIN [NP]   (NP > 1 runs under mpirun, killing rank 1)
source "$(dirname "$0")/common.sh"
BIN=$1; NP=${2:-1}
need_data
# The ONNX Runtime parity gate is tested elsewhere; on these barely trained
# models near-tied logits make it noisy, so point it at nothing (skipped).
export SLIM_ORT_SCRIPT=/nonexistent
OUT=$PWD/resume_exact_np$NP; rm -rf "$OUT"; mkdir -p "$OUT"
cfg="$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml"
launch() {
  if [ "$NP" -gt 1 ]; then
    local x=()
    [ -n "${SLIM_TEST_KILL_AT:-}" ] && x+=(-x SLIM_TEST_KILL_AT -x SLIM_TEST_KILL_RANK)
    mpirun --allow-run-as-root --oversubscribe -np "$NP" "${x[@]}" "$BIN" "$@"
  else
    "$BIN" "$@"
  fi
}
batch=$((64 / NP))
args=(--set Global.batch_size=$batch --set Distributed.timeout_s=20)
unset SLIM_TEST_KILL_AT SLIM_TEST_KILL_RANK
launch compress "$cfg" "${args[@]}" --set Global.save_dir="$OUT/ref" > "$OUT/ref.log" 2>&1 ||
  { cat "$OUT/ref.log"; fail "uninterrupted run failed"; }
export SLIM_TEST_KILL_RANK=$((NP - 1))
for kill in 7:forward 21:step 29:checkpoint 33:step 52:forward; do
  export SLIM_TEST_KILL_AT=$kill
  set +e; launch compress "$cfg" "${args[@]}" --set Global.save_dir="$OUT/run" > "$OUT/kill-$kill.log" 2>&1; rc=$?; set -e
  [ "$rc" != 0 ] || { cat "$OUT/kill-$kill.log"; fail "run with SLIM_TEST_KILL_AT=$kill exited 0"; }
  echo "killed at $kill (exit $rc); checkpoints: $(ls "$OUT/run/checkpoints" | tr '\n' ' ')"
done
unset SLIM_TEST_KILL_AT SLIM_TEST_KILL_RANK
launch compress "$cfg" "${args[@]}" --set Global.save_dir="$OUT/run" > "$OUT/final.log" 2>&1 ||
  { cat "$OUT/final.log"; fail "final resumed run failed"; }
grep -q "resumed from" "$OUT/final.log" || fail "final run did not resume"
ref=$OUT/ref/checkpoints/ckpt-00000060.h5; run=$OUT/run/checkpoints/ckpt-00000060.h5
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$ref" "$run" --exact \
  --groups params,buffers,masks,quant,optimizer
# `slimtrain export` rebuilds the deployable model from a checkpoint: from the
# final one it is the very file compress wrote; from a middle one, a model
# with that iteration's weights.
"$BIN" export "$OUT/ref" --out "$OUT/exported.onnx"
cmp "$OUT/exported.onnx" "$OUT/ref/model.onnx" || fail "export of the final checkpoint differs from compress's model.onnx"
"$BIN" eval "$cfg" --model "$OUT/exported.onnx" > /dev/null || fail "slimtrain cannot run its own INT8 QDQ export"
"$BIN" export "$OUT/ref/checkpoints/ckpt-00000050.h5" --out "$OUT/exported50.onnx" --fp32
cmp -s "$OUT/exported50.onnx" "$OUT/exported.onnx" && fail "iteration-50 export equals the final one"
"$BIN" eval "$cfg" --model "$OUT/exported50.onnx" > /dev/null || fail "the iteration-50 FP32 export does not evaluate"
echo "export: final checkpoint -> model.onnx byte-identical; iteration 50 -> FP32 model evaluates"
echo "PASS"
