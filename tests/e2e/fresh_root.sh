# A new user on a fresh Debian 12, for real: a `debootstrap --variant=minbase
# bookworm` root (no compiler, CMake or git), the repository cloned at HEAD,
# then, inside the root:
#  1. the README's two commands: `scripts/test` (FRESH_ROOT_TEST_ARGS, if set,
#     are passed to it as ctest arguments: a reduced subset, e.g. "-L unit";
#     by default every test not labelled long) and `scripts/demo`;
#  2. "Compress your own model" as the README writes it: a torchvision
#     ResNet18 exported by torch.onnx.export, `slimtrain inspect`, the
#     README's minimal config on an ACT data_dir of the user's images (made by
#     tests/data/make_image_sets.py), at 64x64 and a few iterations, on 1 rank
#     and on 2 ranks (mpirun); report.json read;
#  3. the README's Install: `cmake --install build --prefix /opt/slimtrain`,
#     `cpack -G DEB`, `apt-get install ./build/slimtrain_*.deb`, onnxruntime-node
#     for the installed helper; then the source tree is deleted and the
#     installed /usr/bin/slimtrain and /opt/slimtrain/bin/slimtrain compress
#     the model again, with the ONNX Runtime check.
# Needs root, network (apt, npm) and mount; label long (SLIM_LONG_TESTS=1).
# Settings of the machine that runs it, not of the project: the host's CA
# bundle for npm (NODE_EXTRA_CA_CERTS, npm's cafile) go into the root's
# environment here. FRESH_ROOT_KEEP=1 leaves the root for inspection.
# Usage: fresh_root.sh [SLIMTRAIN (unused: the root builds its own)]
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (debootstrap, chroot, mount)"; exit 77; }
command -v git > /dev/null || { echo "SKIP: git not found"; exit 77; }
T0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
if ! command -v debootstrap > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap > /dev/null ||
    { echo "SKIP: debootstrap not installable"; exit 77; }
fi
WORK=${FRESH_ROOT_DIR:-$PWD/fresh_root}
ROOT=$WORK/root
cleanup() {
  umount -R "$ROOT/dev" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
  [ "${FRESH_ROOT_KEEP:-0}" = 1 ] || rm -rf "$ROOT"
}
trap cleanup EXIT
cleanup
mkdir -p "$ROOT"
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

stamp "debootstrap --variant=minbase bookworm $ROOT $MIRROR"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 ||
  { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
cp /etc/resolv.conf "$ROOT/etc/"
[ -f /etc/apt/sources.list.d/debian.sources ] &&
  cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/"
# This machine's npm needs its CA bundle (a setting of the host, not the
# project). Kept outside /etc/ssl/certs, which the root's ca-certificates
# package regenerates.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/host-ca.crt"
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
for tool in gcc g++ cmake git; do
  [ ! -e "$ROOT/usr/bin/$tool" ] || fail "the fresh root already has $tool"
done

stamp "git clone (HEAD $(git -C "$SLIM_SOURCE_DIR" rev-parse --short HEAD)) into the root"
git clone -q "$SLIM_SOURCE_DIR" "$ROOT/root/slimtrain"
[ "$(git -C "$ROOT/root/slimtrain" rev-parse HEAD)" = "$(git -C "$SLIM_SOURCE_DIR" rev-parse HEAD)" ] ||
  fail "the clone is not at the source's HEAD"
git -C "$SLIM_SOURCE_DIR" diff --quiet HEAD ||
  echo "note: the source tree has uncommitted changes; the root tests HEAD"

printf 'cafile=/root/host-ca.crt\n' > "$ROOT/root/.npmrc"
in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 NODE_EXTRA_CA_CERTS=/root/host-ca.crt /bin/bash -euo pipefail -c "$1"
}

read -r -a TEST_ARGS <<< "${FRESH_ROOT_TEST_ARGS:-}"
stamp "scripts/test ${TEST_ARGS[*]:-} (install, build, ctest)"
in_root "cd /root/slimtrain && scripts/test ${TEST_ARGS[*]:-}" > "$WORK/test.log" 2>&1 ||
  { tail -60 "$WORK/test.log"; fail "scripts/test failed in the fresh root"; }
grep -E "tests passed|tests failed|Total Test time" "$WORK/test.log" | tail -3
stamp "scripts/demo"
in_root "cd /root/slimtrain && scripts/demo" > "$WORK/demo.log" 2>&1 ||
  { tail -60 "$WORK/demo.log"; fail "scripts/demo failed in the fresh root"; }
tail -7 "$WORK/demo.log"

stamp "the README's 'Compress your own model', in /root/work"
in_root '
mkdir -p /root/work && cd /root/work
S=/root/slimtrain/build/launcher/slimtrain
# The user'"'"'s images: an ACT data_dir (train_list.txt, val_list.txt).
python3 /root/slimtrain/tests/data/make_image_sets.py data --train 64 --eval 32 > /dev/null
ln -sfn data/act my_images
# 1. export (the README'"'"'s lines; a fresh ResNet18 with 10 classes stands in
#    for the user'"'"'s trained weights)
python3 - <<EOF
import os, torch, torchvision
os.makedirs("resnet18", exist_ok=True)
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
m.eval()
x = torch.randn(1, 3, 64, 64)  # the README: "the image size you train at"; 64 here
torch.onnx.export(m, x, "resnet18/model.onnx", opset_version=13,
                  input_names=["inputs"], output_names=["logits"],
                  dynamic_axes={"inputs": {0: "N"}, "logits": {0: "N"}})
EOF
# 2. inspect
$S inspect resnet18/model.onnx > inspect.txt
grep -i "distill" inspect.txt | head -3
# 3. the README'"'"'s minimal config, as written there
sed -n "/^Global:\$/,/^\`\`\`\$/p" /root/slimtrain/README.md | sed "\$d" > act.yaml
grep -q "prune_strategy: gmp" act.yaml
# 4. one rank: small images and a few iterations (--set, as the README says)
SMALL=(--set Global.img_size=64 --set Global.resize_size=72 --set Global.batch_size=8
       --set TrainConfig.train_iter=4 --set TrainConfig.logging_iter=2)
$S compress act.yaml "${SMALL[@]}" > run1.log 2>&1 || { tail -30 run1.log; exit 1; }
# 5. two ranks
mpirun --allow-run-as-root --oversubscribe -np 2 $S compress act.yaml "${SMALL[@]}" \
  --set Global.batch_size=4 --set Global.save_dir=./output/resnet18_np2 \
  > run2.log 2>&1 || { tail -30 run2.log; exit 1; }
# 6. the report, as the README reads it
for d in output/resnet18 output/resnet18_np2; do
  python3 -c "import json; r = json.load(open(\"$d/report.json\")); \
    print(\"$d\", r[\"teacher_top1\"], r[\"student_top1\"], r[\"onnxruntime_top1\"], r[\"size_ratio\"], \
          r[\"world_size\"], r[\"onnxruntime_differing_predictions\"]); \
    assert r[\"onnxruntime_top1\"] == r[\"onnxruntime_top1\"] and r[\"onnxruntime_differing_predictions\"] == 0"
  test -s $d/model.onnx && test -s $d/report.html && test -s $d/metrics.jsonl
done
' > "$WORK/user.log" 2>&1 || { tail -40 "$WORK/user.log"; fail "the README's steps failed"; }
cat "$WORK/user.log"

stamp "the README's Install: cmake --install, cpack -G DEB, apt-get install ./build/slimtrain_*.deb"
in_root '
cd /root/slimtrain
cmake --install build --prefix /opt/slimtrain > /dev/null
(cd build && cpack -G DEB > /dev/null)
apt-get install -y -q ./build/slimtrain_*.deb > /dev/null
npm install --ignore-scripts --no-audit --no-fund --prefix /usr/share onnxruntime-node@1.30.0 > /dev/null
npm install --ignore-scripts --no-audit --no-fund --prefix /opt/slimtrain/share onnxruntime-node@1.30.0 > /dev/null
dpkg -s slimtrain | grep -E "^(Version|Depends):"
' > "$WORK/install.log" 2>&1 || { tail -40 "$WORK/install.log"; fail "install failed"; }
cat "$WORK/install.log"

stamp "delete the source tree; compress with the installed binaries"
in_root '
rm -rf /root/slimtrain
cd /root/work
for S in /usr/bin/slimtrain /opt/slimtrain/bin/slimtrain; do
  out=output/installed_$(echo $S | tr / _)
  $S compress act.yaml --set Global.img_size=64 --set Global.resize_size=72 --set Global.batch_size=8 \
    --set TrainConfig.train_iter=4 --set Global.save_dir=$out \
    > $out.log 2>&1 || { tail -30 $out.log; exit 1; }
  python3 -c "import json; r = json.load(open(\"$out/report.json\")); \
    print(\"$S\", r[\"student_top1\"], r[\"onnxruntime_top1\"], r.get(\"onnxruntime_check\")); \
    assert r[\"onnxruntime_top1\"] == r[\"onnxruntime_top1\"] and r[\"onnxruntime_differing_predictions\"] == 0"
done
' > "$WORK/installed.log" 2>&1 || { tail -40 "$WORK/installed.log"; fail "the installed binary failed"; }
cat "$WORK/installed.log"
stamp "PASS: fresh root, scripts/test, scripts/demo, the README's steps, the installed .deb"
