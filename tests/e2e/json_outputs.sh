# Every command that prints data, run with --json: stdout is exactly one JSON
# object that Python's json module parses, with "command" and
# "schema_version", snake_case keys of the documented types (docs/CLI.md) and
# every shape an array of integers. Commands: train, eval, compress, inspect,
# checkpoint show, export, infer.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
export SLIM_ORT_SCRIPT=/nonexistent  # the ONNX Runtime check is tested elsewhere
OUT=$PWD/json_outputs; rm -rf "$OUT"; mkdir -p "$OUT"
PY=/usr/bin/python3
run() {  # run NAME CMD...: stdout to $OUT/NAME.json, stderr to $OUT/NAME.err
  local name=$1; shift
  "$@" > "$OUT/$name.json" 2> "$OUT/$name.err" || { cat "$OUT/$name.err"; fail "$name: '$*' failed"; }
  echo "ran: $*"
}
PRE=$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml
run train "$BIN" train "$PRE" --json --set Global.save_dir="$OUT/train" --set TrainConfig.train_iter=20 \
  --set TrainConfig.eval_iter=1000 --set Checkpoint.every_iters=10 --set Checkpoint.resume=never
run eval "$BIN" eval "$PRE" --json --model "$OUT/train/model.onnx"
run inspect "$BIN" inspect "$OUT/train/model.onnx" --json
run inspect_config "$BIN" inspect "$OUT/train/model.onnx" --json \
  --config "$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml"
ckpt=$(ls "$OUT"/train/checkpoints/ckpt-*.h5 | tail -1)
run checkpoint_show "$BIN" checkpoint show "$ckpt" --json
run compress "$BIN" compress "$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml" --json \
  --set Global.save_dir="$OUT/act" --set Checkpoint.resume=never
run export "$BIN" export "$OUT/act" --out "$OUT/exported.onnx" --json
"$PY" - "$OUT/input.pb" <<'EOF'
import sys, numpy as np
from onnx import numpy_helper
t = numpy_helper.from_array(np.full((2, 1, 28, 28), 0.5, np.float32), "image")
open(sys.argv[1], "wb").write(t.SerializeToString())
EOF
run infer "$BIN" infer "$OUT/exported.onnx" --input "$OUT/input.pb" --output-dir "$OUT/infer" --json

"$PY" - "$OUT" "$ckpt" <<'EOF' || fail "a --json output does not match its schema"
import json, os, re, sys
out, ckpt = sys.argv[1], sys.argv[2]
num, integer, text, boolean = (int, float), int, str, bool
def shape_ok(v):
    return v is None or (isinstance(v, list) and all(type(d) is int for d in v))
class listof:
    def __init__(self, item):
        self.item = item
SHAPED = {"name": text, "shape": shape_ok}
SCHEMAS = {
    "train": {"top1": num, "iterations": integer, "images_per_s": num, "loss": num, "model": text},
    "eval": {"top1": num, "correct": integer, "total": integer, "bad_images_skipped": integer,
             "model": text},
    "inspect": {"model": text, "name": text, "inputs": listof(SHAPED), "outputs": listof(SHAPED),
                "tensors": listof({"name": text, "shape": shape_ok, "op": text, "node": text}),
                "parameters": listof({"name": text, "shape": shape_ok, "kind": text}),
                "parameter_count": integer, "quantized_ops": listof({"node": text, "kind": text}),
                "prunable_params": listof(text), "prunable_params_conv1x1_only": listof(text),
                "default_distill_nodes": listof(text),
                "proposed_distill_nodes": listof({"name": text, "shape": shape_ok,
                                                  "default": boolean, "used": boolean})},
    "checkpoint show": {"file": text, "step": integer, "epoch": integer, "sample_offset": integer,
                        "world_size": integer, "seed": integer, "created_unix": integer,
                        "groups": dict},
    "compress": {"model": text, "teacher_top1": num, "student_top1": num, "iterations": integer,
                 "images_per_s": num, "world_size": integer, "sparsity": dict,
                 "quantized_ops": dict, "distill_pairs": listof(text), "output": text,
                 "format": text, "export_top1": num, "size_ratio": num},
    "export": {"output": text, "format": text, "checkpoint": text, "iteration": integer,
               "bytes": integer},
    "infer": {"model": text, "outputs": listof({"name": text, "file": text, "dtype": text,
                                                "shape": shape_ok})},
}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
def check(where, value, schema):
    if isinstance(schema, listof):
        assert isinstance(value, list), f"{where}: expected a list, found {value!r:.80}"
        for i, v in enumerate(value):
            check(f"{where}[{i}]", v, schema.item)
    elif isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: expected an object, found {value!r:.80}"
        for k, s in schema.items():
            assert k in value, f"{where}: no key '{k}' (has {sorted(value)})"
            check(f"{where}.{k}", value[k], s)
    elif callable(schema) and not isinstance(schema, type):
        assert schema(value), f"{where}: {value!r:.80} is not an integer array"
    else:
        ok = isinstance(value, schema) and not (schema is not boolean and isinstance(value, bool))
        assert ok, f"{where}: expected {schema}, found {value!r:.80}"
def walk(where, v, data_keys):
    # Keys are snake_case except those that are names from the model or
    # checkpoint; every "shape" anywhere is an integer array.
    if isinstance(v, dict):
        for k, x in v.items():
            if not data_keys:
                assert SNAKE.match(k), f"{where}: key '{k}' is not snake_case"
            if k == "shape":
                assert shape_ok(x), f"{where}.shape: {x!r} is not an integer array"
            walk(f"{where}.{k}", x, k in ("groups", "per_parameter"))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(f"{where}[{i}]", x, False)
for name, command in [("train", "train"), ("eval", "eval"), ("inspect", "inspect"),
                      ("inspect_config", "inspect"),
                      ("checkpoint_show", "checkpoint show"), ("compress", "compress"),
                      ("export", "export"), ("infer", "infer")]:
    raw = open(os.path.join(out, name + ".json")).read()
    assert raw.count("\n") == 1 and raw.endswith("\n"), f"{name}: stdout is not one line: {raw!r:.200}"
    doc = json.loads(raw)
    assert doc.get("command") == command, f"{name}: command {doc.get('command')!r}"
    assert type(doc.get("schema_version")) is int, f"{name}: no integer schema_version"
    check(name, doc, SCHEMAS[command])
    walk(name, doc, False)
    print(f"{name}: {len(doc)} keys parsed and checked")
# A few values that tie the outputs together.
train = json.load(open(os.path.join(out, "train.json")))
assert train["iterations"] == 20, train
show = json.load(open(os.path.join(out, "checkpoint_show.json")))
assert show["step"] == 20 and show["file"] == ckpt, show
ins = json.load(open(os.path.join(out, "inspect.json")))
assert ins["inputs"][0]["shape"][1:] == [1, 28, 28], ins["inputs"]
assert ins["outputs"][0]["shape"] == [1, 10], ins["outputs"]
# Marked nodes: the defaults without --config, the config's pairs with it.
props = ins["proposed_distill_nodes"]
assert [p["name"] for p in props if p["used"]] == ins["default_distill_nodes"], props
cfg = json.load(open(os.path.join(out, "inspect_config.json")))["proposed_distill_nodes"]
assert sorted(p["name"] for p in cfg if p["used"]) == ["logits", "pw_relu_4"], cfg
assert {p["name"]: p["shape"] for p in cfg}["pw_relu_4"] == [1, 128, 7, 7], cfg
exp = json.load(open(os.path.join(out, "export.json")))
assert exp["bytes"] == os.path.getsize(exp["output"]) and exp["iteration"] == 60, exp
inf = json.load(open(os.path.join(out, "infer.json")))
assert inf["outputs"][0]["shape"] == [2, 10] and os.path.isfile(inf["outputs"][0]["file"]), inf
ev = json.load(open(os.path.join(out, "eval.json")))
assert ev["total"] == 10000 and 0 <= ev["correct"] <= ev["total"], ev
EOF
echo "PASS"
