# A tiny PyTorch TransformerEncoder text classifier (Embedding on int64 token
# ids, tests/e2e/zoo.py's TextClassifier) compresses from an HDF5 set of int64
# token ids: QAT with PACT (the attention's activation x activation MatMuls
# get both inputs quantized), GMP, l2 distillation of the logits and of the
# encoder's output (a hidden state). Checks: exit 0 on 1 rank x 16 and on
# 2 ranks x 8; every Q.K^T and attn.V MatMul of the INT8 export reads two
# DequantizeLinear'd activations; ONNX Runtime's top-1 equals slimtrain's
# (fake quant and the export) with 0 differing predictions; the Embedding's
# table trained; the final checkpoints of both runs are bit-identical and so
# are the exports.
# Usage: transformer_compress.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
need_ort
/usr/bin/python3 -c 'import torch, torchvision, onnx, h5py' 2> /dev/null ||
  { echo "SKIP: /usr/bin/python3 lacks torch/torchvision/onnx/h5py"; exit 77; }
command -v mpirun > /dev/null || { echo "SKIP: mpirun missing (openmpi-bin)"; exit 77; }
OUT=$PWD/transformer_compress; rm -rf "$OUT"; mkdir -p "$OUT/model"
/usr/bin/python3 - "$SLIM_SOURCE_DIR/tests/e2e" "$OUT" <<'PY'
import sys
import h5py
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import zoo
out = sys.argv[2]
torch.manual_seed(0)
m = zoo.TextClassifier(vocab=100, d_model=32, heads=2, layers=2).eval()
x = torch.randint(0, 100, (2, 12), dtype=torch.int64)
path = f"{out}/model/model.onnx"
# Autograd on: no_grad() takes the fused fast path, which has no ONNX export.
torch.onnx.export(m, x, path, opset_version=13, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
zoo.name_hidden_state(path, "hidden")
rng = np.random.default_rng(3)
for name, n in (("train", 64), ("eval", 64)):
    ids = rng.integers(0, 100, (n, 12), dtype=np.int64)
    with torch.no_grad():  # labels: the teacher's own classes
        y = m(torch.from_numpy(ids)).argmax(1).numpy()
    with h5py.File(f"{out}/{name}.h5", "w") as f:
        f.create_dataset("x", data=ids if name == "train" else ids.astype(np.int32))
        f.create_dataset("y", data=y.astype(np.int64))
PY
cat > "$OUT/act.yaml" <<YAML
Global:
  model_dir: $OUT/model
  model_filename: model.onnx
  batch_size: 16
  seed: 1
  Data: {format: hdf5, train_images: $OUT/train.h5, eval_images: $OUT/eval.h5}
Checkpoint: {every_iters: 0, resume: never}
Quantization:
  use_pact: true
  quantize_op_types: [mul, matmul, matmul_v2]
Distillation:
  loss: l2
  node: [hidden, output]
UnstructurePrune: {prune_strategy: gmp, ratio: 0.5, prune_params_type: null}
TrainConfig:
  train_iter: 8
  eval_iter: 8
  learning_rate: 0.01
  optimizer_builder: {optimizer: {type: Momentum, momentum: 0.9}, weight_decay: 4.0e-5}
YAML
# Images for the int64 input: exit 2 at start, naming the file, 'x' and the input.
/usr/bin/python3 -c 'import sys, h5py, numpy as np; f = h5py.File(sys.argv[1], "w"); \
  f["x"] = np.zeros((4, 3, 8, 8), np.uint8); f["y"] = np.zeros(4, np.int64)' "$OUT/images.h5"
rc=0; "$BIN" compress "$OUT/act.yaml" --set Global.save_dir="$OUT/bad" \
  --set Global.Data.eval_images="$OUT/images.h5" > "$OUT/bad.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "images for a token-id model: exit $rc, expected 2"
grep -q "$OUT/images.h5.*dataset 'x' holds images but input 'input' .* is int64" "$OUT/bad.log" ||
  { cat "$OUT/bad.log"; fail "unclear error for images fed to a token-id input"; }
"$BIN" compress "$OUT/act.yaml" --set Global.save_dir="$OUT/np1" > "$OUT/np1.log" 2>&1 ||
  { tail -20 "$OUT/np1.log"; fail "1-rank run failed"; }
mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" compress "$OUT/act.yaml" \
  --set Global.batch_size=8 --set Global.save_dir="$OUT/np2" > "$OUT/np2.log" 2>&1 ||
  { tail -20 "$OUT/np2.log"; fail "2-rank run failed"; }
for r in np1 np2; do
  /usr/bin/python3 - "$OUT/$r" <<'PY'
import json, sys
import onnx
d = sys.argv[1]
rep = json.load(open(f"{d}/report.json"))
print(f"{d}: quantized ops {rep['quantized_ops']['count']}, top-1 teacher {rep['teacher_top1']} "
      f"student {rep['student_top1']} export {rep['export_top1']} ONNX Runtime "
      f"{rep['onnxruntime_top1']}, differing {rep['onnxruntime_differing_predictions']}, "
      f"distill {rep['distill_pairs']}")
assert rep["onnxruntime_top1"] is not None, rep.get("onnxruntime_check")
assert rep["onnxruntime_top1"] == rep["export_top1"] == rep["student_top1"], "top-1 differs"
assert rep["onnxruntime_differing_predictions"] == 0
assert any("hidden" in p for p in rep["distill_pairs"]), "hidden state not distilled"
g = onnx.load(f"{d}/model.onnx").graph
inits = {t.name for t in g.initializer}
producer = {o: n for n in g.node for o in n.output}
def act_dq(t):  # a DequantizeLinear of a QuantizeLinear'd activation
    n = producer.get(t)
    return n is not None and n.op_type == "DequantizeLinear" and n.input[0] not in inits
act_act = [n for n in g.node if n.op_type == "MatMul" and all(i not in inits for i in n.input)
           and not any(producer.get(i) and producer[i].op_type == "DequantizeLinear"
                       and producer[i].input[0] in inits for i in n.input)]
print(f"{d}: {len(act_act)} activation x activation MatMuls, quantized:",
      [all(act_dq(i) for i in n.input) for n in act_act])
assert len(act_act) == 4, "expected Q.K^T and attn.V in each of the 2 layers"
assert all(all(act_dq(i) for i in n.input) for n in act_act), "an act x act MatMul is float"
PY
done
# What trains: the Embedding's table (changed from the exported one), the
# biases and the decomposed LayerNorms' gamma/beta; no scalar constant (eps).
/usr/bin/python3 - "$OUT" <<'PY'
import sys
import h5py
import numpy as np
import onnx
import onnx.numpy_helper
d = sys.argv[1]
init = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(f"{d}/model/model.onnx").graph.initializer}
with h5py.File(f"{d}/np1/checkpoints/ckpt-00000008.h5", "r") as f:
    got = f["params"]["emb.weight"][()]
    params = {f["params"][k].attrs["name"].decode(): f["params"][k].shape for k in f["params"]}
changed = int((got != init["emb.weight"]).sum())
print(f"emb.weight: {changed} of {got.size} values trained; {len(params)} trained tensors")
assert changed > got.size // 2, "the Embedding table did not train"
for layer in (0, 1):
    for p in ("norm1.weight", "norm1.bias", "norm2.weight", "linear1.bias",
              "self_attn.in_proj_bias", "self_attn.out_proj.weight"):
        assert f"enc.layers.{layer}.{p}" in params, f"enc.layers.{layer}.{p} is not trained"
scalars = [n for n, s in params.items() if int(np.prod(s)) == 1 and not n.endswith("_pact")]
assert not scalars, f"constants trained: {scalars}"
PY
/usr/bin/python3 "$SLIM_SOURCE_DIR/tests/e2e/h5compare.py" "$OUT/np1/checkpoints/ckpt-00000008.h5" \
  "$OUT/np2/checkpoints/ckpt-00000008.h5" --exact
cmp "$OUT/np1/model.onnx" "$OUT/np2/model.onnx" || fail "model.onnx differs between 1 and 2 ranks"
echo "PASS"
