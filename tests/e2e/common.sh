# Helpers for the e2e scripts: fail with a message, find data, compare JSON.
set -euo pipefail
SLIM_SOURCE_DIR="${SLIM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FMNIST=/usr/share/datasets/fashion-mnist
fail() { echo "FAIL: $*" >&2; exit 1; }
need_data() {
  [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing ($FMNIST); install dataset-fashion-mnist"
}
need_ort() {
  [ -f "$SLIM_SOURCE_DIR/node_modules/onnxruntime-node/package.json" ] ||
    fail "onnxruntime-node missing: run 'npm install --ignore-scripts' in $SLIM_SOURCE_DIR (scripts/test does)"
}
# json_get FILE_OR_STRING KEY: prints the value of a top-level numeric key.
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
ort_top1() {
  node "$SLIM_SOURCE_DIR/scripts/ort_eval.js" "$1" "$FMNIST/t10k-images-idx3-ubyte.gz" \
    "$FMNIST/t10k-labels-idx1-ubyte.gz" 0.2860 0.3530 | tail -1
}
