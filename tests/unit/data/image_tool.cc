// slim_image_tool: the image pipeline from the command line, for the PIL
// parity test and scripts/bench.
//   decode IN OUT.raw            RGB (H, W, 3) bytes; prints {"width":W,"height":H}
//   transform [opts] IN OUT.raw  3 x S x S uint8 (CHW)
//   bench [opts] [--n N] FILES   single-thread decode + transform; one JSON line
// opts: --kind act|torchvision --interp NAME --img-size N --resize-size N
//       [--seed S | --eval] [--no-dct] [--no-flip] [--bgr]
// transform without --seed is the evaluation transform; bench without --eval
// is the training transform (seeds mixed from --seed, default 1, and i).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "trainer/core/rng.h"
#include "trainer/data/image_decode.h"
#include "trainer/data/image_transform.h"
#include "trainer/data/source.h"

namespace {

using namespace slim::data;

struct Args {
  ImageTransform t;
  uint64_t seed = kNoAugment;
  bool eval = false, seeded = false;
  int64_t n = 0;
  std::vector<std::string> files;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) SLIM_THROW(slim::ConfigError, k, " needs a value");
      return argv[++i];
    };
    if (k == "--kind") {
      const std::string v = value();
      if (v != "act" && v != "torchvision") SLIM_THROW(slim::ConfigError, "bad --kind ", v);
      a.t.kind = v == "act" ? TransformKind::kAct : TransformKind::kTorchvision;
    } else if (k == "--interp") {
      a.t.interp = parseInterp(value());
    } else if (k == "--img-size") {
      a.t.img_size = std::stoll(value());
    } else if (k == "--resize-size") {
      a.t.resize_size = std::stoll(value());
    } else if (k == "--seed") {
      a.seed = std::stoull(value());
      a.seeded = true;
    } else if (k == "--eval") {
      a.eval = true;
    } else if (k == "--n") {
      a.n = std::stoll(value());
    } else if (k == "--no-dct") {
      a.t.dct_scaling = false;
    } else if (k == "--no-flip") {
      a.t.flip = false;
    } else if (k == "--bgr") {
      a.t.bgr = true;
    } else if (k.rfind("--", 0) == 0) {
      SLIM_THROW(slim::ConfigError, "unknown option ", k);
    } else {
      a.files.push_back(k);
    }
  }
  return a;
}

std::vector<uint8_t> readAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw BadSampleError(path + ": cannot open image file");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void writeAll(const std::string& path, const std::vector<uint8_t>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
  if (!f) SLIM_THROW(slim::DataError, "cannot write ", path);
}

int run(int argc, char** argv) {
  if (argc < 2) SLIM_THROW(slim::ConfigError, "usage: slim_image_tool decode|transform|bench ...");
  const std::string cmd = argv[1];
  Args a = parse(argc, argv);
  if (a.eval) a.seed = kNoAugment;
  if (cmd == "bench" && !a.eval && !a.seeded) a.seed = 1;  // bench trains by default
  const size_t S = static_cast<size_t>(a.t.img_size);
  if (cmd == "decode" && a.files.size() == 2) {
    const std::vector<uint8_t> bytes = readAll(a.files[0]);
    const RgbImage img = decodeImage(bytes.data(), bytes.size(), a.files[0], a.t.max_pixels);
    writeAll(a.files[1], img.pixels);
    std::printf("{\"width\":%lld,\"height\":%lld}\n", static_cast<long long>(img.width),
                static_cast<long long>(img.height));
  } else if (cmd == "transform" && a.files.size() == 2) {
    std::vector<uint8_t> out(3 * S * S);
    loadImageSample(a.files[0], a.t, a.seed, out.data());
    writeAll(a.files[1], out);
  } else if (cmd == "bench" && !a.files.empty()) {
    const int64_t n = a.n > 0 ? a.n : static_cast<int64_t>(a.files.size());
    std::vector<uint8_t> out(3 * S * S);
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t digest = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t seed = a.seed == kNoAugment ? kNoAugment : slim::Rng::mix(a.seed, i);
      loadImageSample(a.files[static_cast<size_t>(i) % a.files.size()], a.t, seed, out.data());
      digest = digest * 31 + out[static_cast<size_t>(i) % out.size()];
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"mode\":\"%s\",\"kind\":\"%s\",\"interp\":\"%s\",\"images\":%lld,"
                "\"seconds\":%.4f,\"images_per_s\":%.1f,\"digest\":%llu}\n",
                a.seed == kNoAugment ? "eval" : "train",
                a.t.kind == TransformKind::kAct ? "act" : "torchvision", interpName(a.t.interp),
                static_cast<long long>(n), s, static_cast<double>(n) / s,
                static_cast<unsigned long long>(digest));
  } else {
    SLIM_THROW(slim::ConfigError, "bad command line for '", cmd, "'");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slim_image_tool: %s\n", e.what());
    return slim::exitCodeFor(e);
  }
}
