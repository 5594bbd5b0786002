# Bad usage and bad input exit with code 2 and a message naming the problem;
# --help answers for every command.
source "$(dirname "$0")/common.sh"
BIN=$1
expect() {  # expect CODE SUBSTRING CMD...
  local code=$1 sub=$2; shift 2
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $out"
  case "$out" in *"$sub"*) ;; *) fail "'$*' output lacks '$sub': $out";; esac
  echo "ok: $* -> $rc"
}
expect 0 "usage: slimtrain" "$BIN" --help
for c in train compress eval inspect infer export checkpoint; do expect 0 "usage: slimtrain $c" "$BIN" $c --help; done
expect 2 "unknown command 'trian'" "$BIN" trian
expect 2 "unknown option '--bogus'" "$BIN" train x.yaml --bogus
expect 2 "did you mean 'compress'" "$BIN" compres x.yaml
expect 2 "does not exist" "$BIN" checkpoint show /nonexistent/ckpt.h5 --json
expect 2 "did you mean '--force-resume'" "$BIN" compress x.yaml --force-resum
expect 2 "expected debug, info, warn or error, found 'loud'" "$BIN" train x.yaml --log-level loud
expect 2 "does not exist" "$BIN" eval "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" --quiet --model /nonexistent.onnx
tmp=$(mktemp -d)
sed 's/^  epochs: 3/  epocs: 3/' "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" > "$tmp/bad.yaml"
line=$(grep -n "epocs" "$tmp/bad.yaml" | cut -d: -f1)
expect 2 "did you mean 'epochs'" "$BIN" train "$tmp/bad.yaml"
expect 2 "line $line" "$BIN" train "$tmp/bad.yaml"
expect 2 "does not exist" "$BIN" eval "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" --model "$tmp/none.onnx"
head -c 100 /dev/urandom > "$tmp/junk.onnx"
expect 2 "junk.onnx" "$BIN" eval "$SLIM_SOURCE_DIR/configs/fmnist_pretrain.yaml" --model "$tmp/junk.onnx"
expect 2 "--out model.onnx" "$BIN" export "$tmp"
expect 2 "neither a checkpoint file nor a folder" "$BIN" export "$tmp/none" --out "$tmp/m.onnx"
expect 2 "no valid checkpoint in $tmp" "$BIN" export "$tmp" --out "$tmp/m.onnx"
echo "PASS"
