# An install that works outside the source tree: copy the tracked sources to a
# temporary folder, build only slimtrain there, `cmake --install` it to a
# prefix and `cpack -G DEB` it, delete the copied sources and the build folder,
# then run the installed binary (version, a short training run, inspect; with
# node and onnxruntime-node, a short compress whose export check runs the
# installed ort_stream.js) and inspect the .deb (never installed here).
# Exit 77 (skip) without cmake/cpack/dpkg-deb/dpkg-shlibdeps/git.
# Usage: install.sh [SLIM_BIN (unused: this test builds its own)]
source "$(dirname "$0")/common.sh"
for tool in cmake cpack dpkg-deb dpkg-shlibdeps git; do
  command -v "$tool" > /dev/null || { echo "SKIP: $tool not found (dpkg-dev has dpkg-shlibdeps)"; exit 77; }
done
need_data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slim_install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/src BUILD=$TMP/build P=$TMP/prefix
mkdir -p "$SRC"

# Tracked (and new, not ignored) files of the checkout, as they are on disk.
git -C "$SLIM_SOURCE_DIR" ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do if [ -f "$SLIM_SOURCE_DIR/$f" ]; then printf '%s\0' "$f"; fi; done |
  tar -C "$SLIM_SOURCE_DIR" --null -T - -cf - | tar -C "$SRC" -xf -
[ -f "$SRC/CMakeLists.txt" ] || fail "copying the source tree failed"

echo "== configure + build slimtrain in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLIM_BUILD_TESTS=OFF \
  -DSLIM_NATIVE=OFF -DSLIM_WITH_NCCL=OFF -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON > "$TMP/configure.log" ||
  { cat "$TMP/configure.log"; fail "configure failed"; }
cmake --build "$BUILD" --target slimtrain -j"${SLIM_JOBS:-$(nproc)}" > "$TMP/build.log" 2>&1 ||
  { tail -50 "$TMP/build.log"; fail "build failed"; }

echo "== cmake --install $BUILD --prefix $P"
cmake --install "$BUILD" --prefix "$P" > "$TMP/install.log" || { cat "$TMP/install.log"; fail "install failed"; }
(cd "$P" && find . -type f | sort)
for f in bin/slimtrain share/slimtrain/ort_stream.js share/slimtrain/ort_eval.js \
         share/slimtrain/slurm/compress.sbatch share/slimtrain/configs/fmnist_pretrain.yaml \
         share/slimtrain/configs/fmnist_act.yaml share/doc/slimtrain/README.md share/doc/slimtrain/CONFIG.md; do
  [ -f "$P/$f" ] || fail "installed tree lacks $f"
done
[ -x "$P/bin/slimtrain" ] || fail "$P/bin/slimtrain is not executable"

echo "== cpack -G DEB"
(cd "$BUILD" && cpack -G DEB) > "$TMP/cpack.log" 2>&1 || { cat "$TMP/cpack.log"; fail "cpack failed"; }
debs=("$BUILD"/slimtrain_*.deb)
[ -f "${debs[0]}" ] || { cat "$TMP/cpack.log"; fail "cpack made no slimtrain_*.deb"; }
mkdir -p "$TMP/pkg" && mv "${debs[0]}" "$TMP/pkg/" && DEB=$TMP/pkg/$(basename "${debs[0]}")

echo "== delete the copied sources and the build folder"
rm -rf "$SRC" "$BUILD"
mkdir -p "$TMP/work" && cd "$TMP/work"
SLIM="$P/bin/slimtrain"
unset SLIM_ORT_SCRIPT

echo "== $SLIM --version"
version=$("$SLIM" --version) || fail "--version failed"
echo "$version"
pkg_version=$(dpkg-deb -f "$DEB" Version)
[[ "$version" == *"$pkg_version"* ]] || fail "--version '$version' does not name the package version $pkg_version"

echo "== a 5-iteration training run from the installed config"
"$SLIM" train "$P/share/slimtrain/configs/fmnist_pretrain.yaml" --set TrainConfig.train_iter=5 \
  --set Global.save_dir="$TMP/pretrain" > "$TMP/train.json" || fail "installed slimtrain train failed"
tail -1 "$TMP/train.json"
[ -f "$TMP/pretrain/model.onnx" ] || fail "training wrote no model.onnx"
"$SLIM" inspect "$TMP/pretrain/model.onnx" > "$TMP/inspect.txt" || fail "installed slimtrain inspect failed"
head -5 "$TMP/inspect.txt"

# onnxruntime-node from the checkout's node_modules (NODE_PATH, as documented
# for an installed tree): the installed helpers must run outside the sources.
ORT_MODULES=$SLIM_SOURCE_DIR/node_modules
if command -v node > /dev/null && [ -f "$ORT_MODULES/onnxruntime-node/package.json" ]; then
  echo "== installed ort_eval.js and a short compress (export check via the installed ort_stream.js)"
  export NODE_PATH=$ORT_MODULES
  NODE_PATH=$ORT_MODULES node "$P/share/slimtrain/ort_eval.js" "$TMP/pretrain/model.onnx" \
    "$FMNIST/t10k-images-idx3-ubyte.gz" "$FMNIST/t10k-labels-idx1-ubyte.gz" 0.2860 0.3530 | tail -1 ||
    fail "installed ort_eval.js failed"
  "$SLIM" compress "$P/share/slimtrain/configs/fmnist_act.yaml" --set Global.model_dir="$TMP/pretrain" \
    --set Global.save_dir="$TMP/act" --set TrainConfig.train_iter=5 > "$TMP/compress.json" ||
    fail "installed slimtrain compress failed"
  /usr/bin/python3 - "$TMP/act/report.json" <<'PY' || fail "the export check did not run ONNX Runtime"
import json, math, sys
r = json.load(open(sys.argv[1]))
print({k: r.get(k) for k in ("export_top1", "onnxruntime_top1", "onnxruntime_check")})
sys.exit(0 if isinstance(r.get("onnxruntime_top1"), float) and not math.isnan(r["onnxruntime_top1"]) else 1)
PY
  unset NODE_PATH
else
  echo "(no node or $ORT_MODULES/onnxruntime-node: the ONNX Runtime helpers were not run)"
fi

echo "== the .deb: $(basename "$DEB")"
dpkg-deb -c "$DEB" > "$TMP/contents.txt"
for f in ./usr/bin/slimtrain ./usr/share/slimtrain/ort_stream.js ./usr/share/slimtrain/configs/fmnist_act.yaml \
         ./usr/share/slimtrain/slurm/compress.sbatch ./usr/share/doc/slimtrain/README.md; do
  grep -q " $f\$" "$TMP/contents.txt" || { cat "$TMP/contents.txt"; fail "the .deb lacks $f"; }
done
dpkg-deb -f "$DEB"  # every control field (dpkg-deb -I adds sizes)
depends=$(dpkg-deb -f "$DEB" Depends)
[ -n "$depends" ] || fail "the .deb lists no Depends (dpkg-shlibdeps did not run?)"
for lib in libopenmpi libyaml-cpp libhdf5 libprotobuf libonnx libjpeg libspng libgomp libc6; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
[[ "$(dpkg-deb -f "$DEB" Recommends)" == *nodejs* ]] || fail "Recommends lacks nodejs"
echo "PASS: installed tree and $(basename "$DEB") work without the source tree"
