# Paddle inference models (the fixtures written by Paddle itself):
#  - `slimtrain infer` reads every model `inspect` reads: a Paddle inference
#    model given as its .pdmodel file or as its folder (the same output
#    bytes) and a zoo model; a Paddle model with an op slimtrain lacks exits 2
#    naming it;
#  - the Paddle model (conv + batch_norm + relu, real ImageNet weights)
#    compresses in ACT's form (QAT + PACT, GMP, l2 distillation) on unlabelled
#    images, scored by the distillation loss, and ONNX Runtime runs its INT8
#    export agreeing with slimtrain on every evaluated sample.
# Input: a random TensorProto of the model's input shape
# (batch 1), made with Debian's python3-onnx. The Paddle model's forward is
# checked against naive loops in tests/unit/models/paddle_fixtures_test.cc.
# Needs ../shared/fixtures (the Paddle fixtures) beside the source tree;
# skips (77) without it.
# Usage: paddle_models.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
FIX="$SLIM_SOURCE_DIR/../shared/fixtures/paddle"
[ -d "$FIX/paddlelite_simple_model" ] || { echo "SKIP: Paddle fixtures absent ($FIX)"; exit 77; }
W=$PWD/paddle_models
rm -rf "$W" && mkdir -p "$W"

# make_input MODEL FILE: a random float TensorProto shaped like MODEL's first
# input, dynamic dimensions set to 1.
make_input() {
  "$BIN" inspect "$1" --json > "$W/inspect.json"
  /usr/bin/python3 - "$W/inspect.json" "$2" <<'PY'
import json, sys
import numpy as np
import onnx.numpy_helper
inp = json.load(open(sys.argv[1]))["inputs"][0]
shape = [d if d > 0 else 1 for d in inp["shape"]]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
open(sys.argv[2], "wb").write(onnx.numpy_helper.from_array(x, inp["name"]).SerializeToString())
print(inp["name"], shape)
PY
}
# output_shape FILE.pb: the dims of a TensorProto
output_shape() {
  /usr/bin/python3 -c 'import sys, onnx; t = onnx.TensorProto(); t.ParseFromString(open(sys.argv[1], "rb").read()); print(list(t.dims))' "$1"
}

M="$FIX/paddlelite_simple_model"
echo "input: $(make_input "$M/model.pdmodel" "$W/x.pb")"
"$BIN" infer "$M/model.pdmodel" --input "$W/x.pb" --output-dir "$W/file" ||
  fail "infer on the Paddle program $M/model.pdmodel"
"$BIN" infer "$M" --input "$W/x.pb" --output-dir "$W/folder" || fail "infer on the Paddle folder $M"
cmp "$W/file/output_0.pb" "$W/folder/output_0.pb" || fail "the .pdmodel and its folder give different outputs"
shape=$(output_shape "$W/file/output_0.pb")
# conv2d 3x3 stride 2 (32 channels) + batch_norm + relu on the model's 224x224 input.
[ "$shape" = "[1, 32, 112, 112]" ] || fail "Paddle output shape $shape, expected [1, 32, 112, 112]"
/usr/bin/python3 -c 'import sys, onnx.numpy_helper as h, onnx; t = onnx.TensorProto(); t.ParseFromString(open(sys.argv[1], "rb").read()); a = h.to_array(t); assert (a >= 0).all() and a.max() > 0, "relu output must be >= 0 and not all zero"' "$W/file/output_0.pb" ||
  fail "the Paddle output is not a relu's"
echo "ok: Paddle program and folder: output $shape, identical bytes"

make_input zoo:mobilenet_tiny "$W/z.pb" > /dev/null
"$BIN" infer zoo:mobilenet_tiny --input "$W/z.pb" --output-dir "$W/zoo" --json > "$W/zoo.json" ||
  fail "infer on zoo:mobilenet_tiny"
echo "ok: zoo:mobilenet_tiny -> $(output_shape "$W/zoo/output_0.pb")"

set +e
out=$("$BIN" infer "$FIX/paddle_inference_demo_custom_gap" --input "$W/x.pb" --output-dir "$W/gap" 2>&1)
rc=$?
set -e
[ $rc = 2 ] || fail "custom op model: exit $rc, expected 2: $out"
echo "$out" | grep -q "gap" || fail "custom op model: the message does not name the op 'gap': $out"
echo "ok: a Paddle model with the custom op 'gap' exits 2: $(echo "$out" | head -1)"

# Compress the Paddle model on unlabelled random images.
need_ort
/usr/bin/python3 -c '
import sys, h5py, numpy as np
r = np.random.default_rng(0)
for part, n in (("train", 32), ("eval", 16)):
    with h5py.File(f"{sys.argv[1]}/{part}.h5", "w") as f:
        f.create_dataset("x", data=r.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8))
' "$W"
cat > "$W/act.yaml" <<YAML
Global:
  model_dir: $M
  model_filename: model.pdmodel
  params_filename: model.pdiparams
  batch_size: 8
  seed: 1
  save_dir: $W/run
  Data: {format: hdf5, train_images: $W/train.h5, eval_images: $W/eval.h5,
         mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
Checkpoint: {every_iters: 0, resume: never}
Quantization: {use_pact: true}
Distillation: {loss: l2}
UnstructurePrune: {prune_strategy: gmp, ratio: 0.5, prune_params_type: null}
TrainConfig: {train_iter: 4, eval_iter: 1000, logging_iter: 1, learning_rate: 0.001}
YAML
"$BIN" compress "$W/act.yaml" > "$W/compress.log" 2>&1 || { tail -20 "$W/compress.log"; fail "compress of the Paddle model"; }
/usr/bin/python3 - "$W/run/report.json" <<'PY' || fail "the Paddle model's compress report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["metric"] == "distill_loss", r["metric"]
assert r["quantized_ops"]["count"] == 1, r["quantized_ops"]
assert r["onnxruntime_differing_predictions"] == 0, r.get("onnxruntime_first_difference")
print(f"ok: Paddle model compressed: distill_loss {r['student_distill_loss']:.4g}, "
      f"{r['quantized_ops']['count']} quantized op, INT8 export in ONNX Runtime: 0 of 16 differ, "
      f"{r['size_ratio']:.2f}x smaller")
PY
echo PASS
