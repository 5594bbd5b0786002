# Data parallelism is exact (DESIGN.md §3): mpirun -np 2 with batch B against
# 1 rank with batch 2B, same seed, end with bit-identical state — batch norm
# statistics and weight gradients are reduced in fixed point, world-size
# invariant (trainer/rank_reduction/exact_sum.h):
#  - FP32, configs/fmnist_pretrain.yaml, 200 iterations: every parameter, BN
#    statistic and optimizer slot has the same bytes;
#  - ACT, configs/fmnist_act.yaml (QAT + PACT + GMP + distillation, teacher =
#    the FP32 model just trained), 20 iterations: the same for parameters,
#    BN statistics, masks, observer state and optimizer;
# and in each 2-rank run both ranks hold bit-identical state.
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
  echo "$name: 1 rank x 64 vs 2 ranks x 32 after $iters iterations:"
  compare "$(last "$OUT/${name}_one")" "$(last "$OUT/${name}_two")" --exact
  echo "$name: rank 0 vs rank 1 state:"
  compare "$OUT/${name}_ranks"/rank0/ckpt-*.h5 "$OUT/${name}_ranks"/rank1/ckpt-*.h5 --exact
}
run fp32 train "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" 200
export SLIM_ORT_SCRIPT=/nonexistent  # the parity gate is tested elsewhere
run act compress "$SLIM_SOURCE_DIR/configs/fmnist_act.yaml" 20 --set Global.model_dir="$OUT/fp32_one"
echo "PASS"
