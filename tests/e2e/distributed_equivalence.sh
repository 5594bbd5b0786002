# Data parallelism is exact per step (DESIGN.md §3): mpirun -np 2 with batch B
# against 1 rank with batch 2B, same seed.
#  - FP32 (configs/fmnist_pretrain.yaml): after one iteration every parameter
#    and BN statistic agrees within 1e-5 relative (measured: 1.2e-7, float
#    summation order of the weight gradients); after 200 iterations both ranks
#    hold bit-identical state. The 200-iteration difference between the two
#    runs is printed, not asserted: at lr 0.1 a 1-ulp difference flips a ReLU
#    by iteration 2 and training amplifies it (measured 2e-3 at iteration 2,
#    0.16 at 10, O(1) at 200), so equivalence over long horizons needs
#    world-size-invariant reductions (see the open distributed issue).
#  - ACT (configs/fmnist_act.yaml: QAT + PACT + GMP + distillation, teacher =
#    the FP32 model just trained): after one iteration params, BN statistics,
#    masks and quantizer state agree within 1e-5; after 20 iterations both
#    ranks hold bit-identical state.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
OUT=$PWD/dist_equiv; rm -rf "$OUT"; mkdir -p "$OUT"
compare() { /usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$@"; }
last() { ls "$1"/checkpoints/ckpt-*.h5 | tail -1; }
# run NAME COMMAND CONFIG ITERS ARGS...: 1 rank x 64 in $OUT/NAME_one, 2 x 32 in $OUT/NAME_two
run() {
  local name=$1 cmd=$2 cfg=$3 iters=$4; shift 4
  local a=(--set TrainConfig.train_iter=$iters --set TrainConfig.eval_iter=100000
           --set Checkpoint.every_iters=0 --set Checkpoint.resume=never "$@")
  "$BIN" $cmd "$cfg" "${a[@]}" --set Global.batch_size=64 --set Global.save_dir="$OUT/${name}_one" \
    > "$OUT/${name}_one.log" 2>&1 || { cat "$OUT/${name}_one.log"; fail "$name: 1-rank run failed"; }
  SLIM_DUMP_RANK_STATE="$OUT/${name}_ranks" mpirun --allow-run-as-root --oversubscribe -np 2 \
    -x SLIM_DUMP_RANK_STATE "$BIN" $cmd "$cfg" "${a[@]}" --set Global.batch_size=32 \
    --set Global.save_dir="$OUT/${name}_two" > "$OUT/${name}_two.log" 2>&1 ||
    { cat "$OUT/${name}_two.log"; fail "$name: 2-rank run failed"; }
}
ranks_identical() {
  echo "$1: rank 0 vs rank 1 state:"
  compare "$OUT/$1_ranks"/rank0/ckpt-*.h5 "$OUT/$1_ranks"/rank1/ckpt-*.h5 --exact
}

pre="$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml"
run fp32_step train "$pre" 1
echo "FP32, 1 rank x 64 vs 2 ranks x 32 after 1 iteration:"
compare "$(last "$OUT/fp32_step_one")" "$(last "$OUT/fp32_step_two")" --groups params,buffers --rtol 1e-5
run fp32 train "$pre" 200
ranks_identical fp32
echo "FP32 after 200 iterations (drift, not asserted):"
compare "$(last "$OUT/fp32_one")" "$(last "$OUT/fp32_two")" --groups params,buffers --rtol 1e-4 || true

export SLIM_ORT_EVAL=/nonexistent  # the parity gate is tested elsewhere
act="$SLIM_SOURCE_DIR/configs/fmnist_act.yaml"
run act_step compress "$act" 1 --set Global.model_dir="$OUT/fp32_one"
echo "ACT, 1 rank x 64 vs 2 ranks x 32 after 1 iteration:"
compare "$(last "$OUT/act_step_one")" "$(last "$OUT/act_step_two")" --groups params,buffers,masks,quant --rtol 1e-5
run act compress "$act" 20 --set Global.model_dir="$OUT/fp32_one"
ranks_identical act
echo "ACT after 20 iterations (drift, not asserted):"
compare "$(last "$OUT/act_one")" "$(last "$OUT/act_two")" --groups params,buffers,masks,quant --rtol 1e-4 || true
echo "PASS"
