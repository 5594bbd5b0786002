// libFuzzer target for the ONNX importer: arbitrary bytes go through
// importOnnxBytes (protobuf parse, normalisation, constant folding with the
// real kernels, validation) and, when the import succeeds, every input is
// small and fully known and no integer attribute or int64 initializer is
// large, through one eval-mode forward pass on zero inputs (batch 1). slim::Error may come out; crashes, leaks, out-of-bounds accesses
// and any other exception are what the fuzzer looks for.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "trainer/graph/executor.h"
#include "trainer/models/onnx/onnx_import.h"

namespace {

// Largest total number of input elements fed to the forward pass.
constexpr int64_t kMaxInputElements = 1 << 20;

// Largest integer attribute or int64 initializer value a model may hold to get
// a forward pass: bigger ones (pads, shapes for Expand/Reshape, ...) make valid
// but arbitrarily expensive models, which would only report out-of-memory.
constexpr int64_t kMaxIntValue = 256;

bool smallInts(const int64_t* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (v[i] > kMaxIntValue || v[i] < -kMaxIntValue) return false;
  return true;
}

bool smallTensor(const slim::Tensor& t) {
  return t.dtype() != slim::DType::kI64 ||
         smallInts(t.data<int64_t>(), static_cast<size_t>(t.numel()));
}

// True when every integer attribute and int64 initializer is small.
bool cheapToRun(const slim::graph::Graph& g) {
  for (const auto& kv : g.initializers)
    if (!smallTensor(kv.second)) return false;
  for (const auto& n : g.nodes)
    for (const auto& kv : n.attrs.all()) {
      const auto& v = kv.second;
      if (auto i = std::get_if<int64_t>(&v); i && !smallInts(i, 1)) return false;
      if (auto is = std::get_if<std::vector<int64_t>>(&v);
          is && !smallInts(is->data(), is->size()))
        return false;
      if (auto t = std::get_if<slim::Tensor>(&v); t && !smallTensor(*t)) return false;
    }
  return true;
}

// Zero feeds for every graph input, or false when some dimension is unknown
// (other than a leading batch dimension, which becomes 1) or inputs are big.
bool makeFeeds(const slim::graph::Graph& g, std::map<std::string, slim::Tensor>& feeds) {
  int64_t total = 0;
  for (const auto& in : g.inputs) {
    slim::Shape shape = in.shape;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == -1 && d == 0) shape[d] = 1;
      if (shape[d] <= 0 || shape[d] > kMaxInputElements) return false;
    }
    int64_t n = 1;
    for (int64_t s : shape) {
      n *= s;
      if (n > kMaxInputElements) return false;
    }
    total += n;
    if (total > kMaxInputElements) return false;
    feeds[in.name] = slim::Tensor(shape, in.dtype);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slim;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    graph::Graph g = models::importOnnxBytes(bytes, "fuzz");
    std::map<std::string, Tensor> feeds;
    if (!cheapToRun(g) || !makeFeeds(g, feeds)) return 0;
    graph::Executor ex(g);
    ops::RunContext ctx;
    ex.forward(feeds, ctx);
    if (std::getenv("SLIM_FUZZ_VERBOSE"))
      std::fprintf(stderr, "forward ok (%zu nodes)\n", g.nodes.size());
  } catch (const Error& e) {
    // Expected for malformed models and for ops refusing their inputs.
    // SLIM_FUZZ_VERBOSE=1 prints them (to see what a seed reaches).
    static const bool verbose = std::getenv("SLIM_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "slim::Error: %s\n", e.what());
  }
  return 0;
}
