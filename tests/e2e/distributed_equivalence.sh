# Data parallelism is exact (DESIGN.md §3): mpirun -np 2 with batch B equals
# 1 rank with batch 2B after 200 FP32 iterations (params and BN statistics
# within 1e-4 relative), and after a 2-rank run both ranks hold bit-identical
# state (params, buffers, optimizer).
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
OUT=$PWD/dist_equiv; rm -rf "$OUT"; mkdir -p "$OUT"
cfg="$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml"
common=(--set TrainConfig.train_iter=200 --set TrainConfig.eval_iter=100000 --set Checkpoint.every_iters=0)
"$BIN" train "$cfg" "${common[@]}" --set Global.batch_size=64 --set Global.save_dir="$OUT/one" > /dev/null
SLIM_DUMP_RANK_STATE="$OUT/ranks" mpirun --allow-run-as-root --oversubscribe -np 2 \
  "$BIN" train "$cfg" "${common[@]}" --set Global.batch_size=32 --set Global.save_dir="$OUT/two" > /dev/null
one=$(ls "$OUT"/one/checkpoints/ckpt-*.h5 | tail -1); two=$(ls "$OUT"/two/checkpoints/ckpt-*.h5 | tail -1)
echo "1 rank x 64 vs 2 ranks x 32 after 200 iterations:"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$one" "$two" --groups params,buffers --rtol 1e-4
r0=$(ls "$OUT"/ranks/rank0/ckpt-*.h5); r1=$(ls "$OUT"/ranks/rank1/ckpt-*.h5)
echo "rank 0 vs rank 1 state:"
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$r0" "$r1" --exact
echo "PASS"
