# Resume on a different world size (DESIGN.md §5): a compression run
# (QAT + PACT + GMP + distillation) checkpointed at iteration 30 by FROM ranks
# continues on TO ranks with the global batch kept (64 = ranks x per-rank
# batch). Checks that
#  1. the state the TO-rank run loads equals the saved one exactly (the run is
#     resumed with train_iter 30, so its final checkpoint re-saves what it
#     loaded), and
#  2. 20 iterations later (iteration 50) every parameter, BN statistic, mask,
#     quantizer and optimizer state has the same bytes as in the uninterrupted
#     FROM-rank run (batch reductions are world-size invariant; the issue asks
#     for 1e-4 relative).
# Usage: resume_world_size.sh SLIMTRAIN FROM TO
source "$(dirname "$0")/common.sh"
BIN=$1; FROM=$2; TO=$3
need_data
export SLIM_ORT_SCRIPT=/nonexistent  # parity gate tested elsewhere
OUT=$PWD/resume_world_${FROM}to${TO}; rm -rf "$OUT"; mkdir -p "$OUT"
cfg="$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml"
launch() {  # launch NP ARGS...
  local np=$1; shift
  if [ "$np" -gt 1 ]; then
    mpirun --allow-run-as-root --oversubscribe -np "$np" "$BIN" "$@"
  else
    "$BIN" "$@"
  fi
}
args=(--set Distributed.timeout_s=60 --set Checkpoint.keep_last=10)
launch "$FROM" compress "$cfg" "${args[@]}" --set Global.batch_size=$((64 / FROM)) \
  --set Global.save_dir="$OUT/ref" > "$OUT/ref.log" 2>&1 ||
  { cat "$OUT/ref.log"; fail "uninterrupted $FROM-rank run failed"; }
ref=$OUT/ref/checkpoints
[ -f "$ref/ckpt-00000030.h5" ] && [ -f "$ref/ckpt-00000050.h5" ] || fail "reference checkpoints missing"

# 1. Load on TO ranks and save again without training.
mkdir -p "$OUT/load/checkpoints"
cp "$ref/ckpt-00000030.h5" "$OUT/load/checkpoints/"
launch "$TO" compress "$cfg" "${args[@]}" --set Global.batch_size=$((64 / TO)) \
  --set TrainConfig.train_iter=30 --force-resume \
  --set Global.save_dir="$OUT/load" > "$OUT/load.log" 2>&1 ||
  { cat "$OUT/load.log"; fail "loading on $TO rank(s) failed"; }
grep -q "resumed from .* at iteration 30" "$OUT/load.log" || { cat "$OUT/load.log"; fail "did not resume at 30"; }
echo "loaded on $TO rank(s) and saved again vs the $FROM-rank checkpoint:"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$ref/ckpt-00000030.h5" \
  "$OUT/load/checkpoints/ckpt-00000030.h5" --exact --groups params,buffers,masks,quant,optimizer

# 2. Continue on TO ranks; compare iteration 50 with the uninterrupted run.
mkdir -p "$OUT/run/checkpoints"
cp "$ref/ckpt-00000030.h5" "$OUT/run/checkpoints/"
# (The full 60 iterations: ckpt-50 is then a mid-run checkpoint like the
# reference's; a final one also holds weight scales refreshed by the last eval.)
launch "$TO" compress "$cfg" "${args[@]}" --set Global.batch_size=$((64 / TO)) \
  --set Global.save_dir="$OUT/run" > "$OUT/run.log" 2>&1 ||
  { cat "$OUT/run.log"; fail "resumed $TO-rank run failed"; }
grep -q "continuing on $TO rank(s)" "$OUT/run.log" || { cat "$OUT/run.log"; fail "no world-size change logged"; }
echo "iteration 50: $FROM ranks uninterrupted vs resumed at 30 on $TO rank(s):"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$ref/ckpt-00000050.h5" \
  "$OUT/run/checkpoints/ckpt-00000050.h5" --exact
echo "PASS"
