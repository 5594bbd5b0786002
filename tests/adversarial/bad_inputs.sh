# Inputs slimtrain once accepted silently or answered with the wrong exit
# code; each case checks the exit code (docs/EXIT_CODES.md) and that the
# message names the file and line, key, or data row:
#   label 99 for a 10-class model; a .gz IDX file with a bad CRC; a
#   non-finite row in HDF5 data; weight_bits 1; a missing distillation node;
#   epochs + train_iter together; every_iters 0 and keep_last -1; a config
#   that is a folder; an empty --set value; a `latest` pointer naming an
#   older checkpoint; a resume refused for a changed trajectory on 1 and 2
#   ranks; an export that cannot be written after training (exit 1, the
#   checkpoint kept and named).
# Usage: bad_inputs.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
export SLIM_ORT_SCRIPT=/nonexistent OMP_NUM_THREADS=1
OUT=$PWD/adversarial_inputs; rm -rf "$OUT"; mkdir -p "$OUT/data"
tiny_idx "$OUT/data"
cfg=$OUT/job.yaml
small_config "$cfg" "$OUT/data" "$OUT/run"

echo "== a label the model cannot have (99 for 10 classes)"
mkdir -p "$OUT/data99"; tiny_idx "$OUT/data99" 17 99
small_config "$OUT/job99.yaml" "$OUT/data99" "$OUT/run99"
expect 2 "data99/tr-labels-idx1-ubyte.gz" "sample 17" "label 99 is outside the model's 10 classes" \
  -- "$BIN" compress "$OUT/job99.yaml"

echo "== a .gz IDX file whose CRC-32 does not match"
mkdir -p "$OUT/crc"; cp "$OUT"/data/* "$OUT/crc/"
"$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-6] ^= 0xFF; open(p, "wb").write(b)' \
  "$OUT/crc/tr-images-idx3-ubyte.gz"
small_config "$OUT/crc.yaml" "$OUT/crc" "$OUT/runcrc"
expect 2 "crc/tr-images-idx3-ubyte.gz: .*CRC-32 does not match" -- "$BIN" compress "$OUT/crc.yaml"

echo "== non-finite images in HDF5 data"
"$PY" - "$OUT/nan.h5" <<'EOF'
import gzip, sys, h5py, numpy as np
raw = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()[16:16 + 64 * 784]
lab = gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz").read()[8:8 + 64]
x = np.frombuffer(raw, np.uint8).reshape(64, 1, 28, 28).astype(np.float32) / 255
x[5] = np.nan        # a whole image of NaN
x[40, 0, 3, 4] = np.inf
with h5py.File(sys.argv[1], "w") as f:
    f["x"] = x
    f["y"] = np.frombuffer(lab, np.uint8).astype(np.int64)
EOF
h5set=(--set Global.Data.format=hdf5 --set Global.Data.train_images="$OUT/nan.h5"
       --set Global.Data.train_labels="$OUT/nan.h5" --set Global.Data.eval_images="$OUT/nan.h5"
       --set Global.Data.eval_labels="$OUT/nan.h5" --set Global.save_dir="$OUT/runnan")
expect 2 "nan.h5:x\[(5|40)\]" "non-finite pixel value" -- "$BIN" compress "$cfg" "${h5set[@]}"
# (skip_bad_images applies to decoded image formats; HDF5 rows are refused.)
echo "== config messages: file, line and the key as written"
line=$(grep -n "weight_bits" "$cfg" | cut -d: -f1)
sed 's/weight_bits: 8/weight_bits: 1/' "$cfg" > "$OUT/bits.yaml"
expect 2 "bits.yaml: line $line" "Quantization.weight_bits" "\[2, 16\]" -- "$BIN" compress "$OUT/bits.yaml"
line=$(grep -n "distill_node_pair" "$cfg" | cut -d: -f1)
sed 's/\[teacher_logits, logits\]/[teacher_logits, logitz]/' "$cfg" > "$OUT/node.yaml"
expect 2 "node.yaml: line $line, column [0-9]+: Distillation.distill_node_pair\[1\]: tensor 'logitz' not found" \
  "closest[^:]*: logits" -- "$BIN" compress "$OUT/node.yaml"
expect 2 "is a directory|is not a file|a folder" -- "$BIN" compress "$OUT/data"
expect 2 "--set 'TrainConfig.train_iter='" -- "$BIN" compress "$cfg" --set "TrainConfig.train_iter="
expect 2 "Checkpoint.keep_last" "found -1" "job.yaml" -- "$BIN" compress "$cfg" --set Checkpoint.keep_last=-1
expect 2 "Checkpoint.every_iters" "found -1" -- "$BIN" compress "$cfg" --set Checkpoint.every_iters=-1
# every_iters 0: one checkpoint, at the end (documented in docs/EXIT_CODES.md).
expect 0 -- "$BIN" compress "$cfg" --set Checkpoint.every_iters=0 --set Global.save_dir="$OUT/every0"
[ "$(ls "$OUT/every0/checkpoints" | grep -c '^ckpt-')" = 1 ] && [ -e "$OUT/every0/checkpoints/ckpt-00000004.h5" ] ||
  fail "every_iters 0 wrote $(ls "$OUT/every0/checkpoints" | tr '\n' ' '), expected only ckpt-00000004.h5"
echo "every_iters 0: only the final checkpoint"
# epochs and train_iter together: ACT's rule (whichever ends first), said
# with the file and line of train_iter.
line=$(grep -n "train_iter" "$cfg" | cut -d: -f1)
expect 0 "job.yaml: line $line, column [0-9]+: TrainConfig has both epochs \(5\) and train_iter \(4\)" \
  "whichever comes first" -- "$BIN" compress "$cfg" --set TrainConfig.epochs=5 --set Global.save_dir="$OUT/both"

echo "== resume: newest valid checkpoint over the latest pointer"
expect 0 -- "$BIN" compress "$cfg"
ls "$OUT/run/checkpoints/ckpt-00000002.h5" > /dev/null
echo ckpt-00000002.h5 > "$OUT/run/checkpoints/latest"
expect 0 "latest names ckpt-00000002.h5 but the newer ckpt-00000004.h5 is valid" \
  "resumed from .*ckpt-00000004.h5" -- "$BIN" compress "$cfg"

echo "== a resume refused for a changed trajectory: exit 2 on 1 and on 2 ranks"
expect 2 "ckpt-00000004.h5 was written with a config that leads to a different training run" \
  "learning_rate" -- "$BIN" compress "$cfg" --set TrainConfig.learning_rate=0.002
expect 0 -- "${MPIRUN[@]}" -np 2 -x SLIM_ORT_SCRIPT "$BIN" compress "$cfg" --set Global.batch_size=8 \
  --set Global.save_dir="$OUT/run2"
expect 2 "ckpt-00000004.h5 was written with a config that leads to a different training run" \
  -- "${MPIRUN[@]}" -np 2 -x SLIM_ORT_SCRIPT "$BIN" compress "$cfg" --set Global.batch_size=8 \
  --set Global.save_dir="$OUT/run2" --set TrainConfig.learning_rate=0.002

echo "== the export cannot be written after training: exit 1, the checkpoint kept and named"
mkdir -p "$OUT/ro/model.onnx"  # a folder where the model goes
expect 1 "export: cannot write '.*ro/model.onnx': Is a directory" \
  "kept in .*ro/checkpoints/ckpt-00000004.h5" "slimtrain export" \
  -- "$BIN" compress "$cfg" --set Global.save_dir="$OUT/ro"
expect 0 -- "$BIN" export "$OUT/ro/checkpoints/ckpt-00000004.h5" --out "$OUT/ro_model.onnx"
[ -s "$OUT/ro_model.onnx" ] || fail "the named checkpoint does not export"
mkdir -p "$OUT/ro2/model.onnx"
expect 1 "export: cannot write '.*ro2/model.onnx'" "kept in .*ro2/checkpoints/ckpt-00000004.h5" \
  -- "${MPIRUN[@]}" -np 2 -x SLIM_ORT_SCRIPT "$BIN" compress "$cfg" --set Global.batch_size=8 \
  --set Global.save_dir="$OUT/ro2"
echo "PASS"
