// Shared helpers of the ONNX tests: tensor comparison with tolerances, the
// feeds of an ONNX test data set, and locating fixtures/tools.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <gtest/gtest.h>

#include "trainer/graph/executor.h"
#include "trainer/models/onnx/tensor_proto.h"

namespace slim::test {

namespace fs = std::filesystem;

/// Element i of an integer tensor as int64.
inline int64_t intAt(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kI64: return t.data<int64_t>()[i];
    case DType::kI32: return t.data<int32_t>()[i];
    case DType::kU8: return t.data<uint8_t>()[i];
    case DType::kI8: return t.data<int8_t>()[i];
    default: return 0;
  }
}

/// "" when `got` matches `want` (shape; floats within atol + rtol*|want|,
/// NaN matching NaN; integers exactly), else a description of the mismatch.
inline std::string compareTensors(const Tensor& got, const Tensor& want, double atol,
                                  double rtol) {
  std::ostringstream os;
  if (got.shape() != want.shape()) {
    os << "shape " << shapeStr(got.shape()) << " vs expected " << shapeStr(want.shape());
    return os.str();
  }
  const bool gf = got.dtype() == DType::kF32, wf = want.dtype() == DType::kF32;
  if (gf != wf) {
    os << "dtype " << dtypeName(got.dtype()) << " vs expected " << dtypeName(want.dtype());
    return os.str();
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (gf) {
      double a = got.f32()[i], b = want.f32()[i];
      if (std::isnan(b) && std::isnan(a)) continue;
      if (std::isinf(b) && a == b) continue;
      if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
        os << "element " << i << ": " << a << " vs expected " << b;
        return os.str();
      }
    } else if (intAt(got, i) != intAt(want, i)) {
      os << "element " << i << ": " << intAt(got, i) << " vs expected " << intAt(want, i);
      return os.str();
    }
  }
  return "";
}

/// Reads input_<i>.pb of a test data set and maps them onto the graph inputs
/// (by tensor name when it matches, else by position).
inline std::map<std::string, Tensor> loadFeeds(const fs::path& dir, const graph::Graph& g) {
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0;; ++i) {
    fs::path p = dir / ("input_" + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    std::string name;
    Tensor t = models::readTensorProto(p.string(), &name);
    if (!g.isInput(name)) name = i < g.inputs.size() ? g.inputs[i].name : name;
    feeds[name] = t;
  }
  return feeds;
}

/// Expected outputs output_<i>.pb of a test data set, in order.
inline std::vector<Tensor> loadExpected(const fs::path& dir) {
  std::vector<Tensor> out;
  for (size_t i = 0;; ++i) {
    fs::path p = dir / ("output_" + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(models::readTensorProto(p.string()));
  }
  return out;
}

/// Runs `g` once in eval mode and returns its outputs (deep copies).
inline std::vector<Tensor> runGraph(graph::Graph& g, const std::map<std::string, Tensor>& feeds) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ex.forward(feeds, ctx);
  std::vector<Tensor> out;
  for (const auto& o : g.outputs) out.push_back(ex.value(o.name).clone());
  return out;
}

/// ../shared/fixtures beside the checkout ("" when absent).
inline std::string fixturesDir() {
  fs::path p = fs::path(SLIM_TEST_SOURCE_DIR).parent_path() / "shared" / "fixtures";
  return fs::is_directory(p) ? p.string() : "";
}

/// A scratch folder under the build tree, emptied first; one per running
/// test (ctest runs the tests of a suite as parallel processes).
inline fs::path scratchDir(const std::string& name) {
  std::string test = "none";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    test = std::string(info->test_suite_name()) + "." + info->name();
  std::replace(test.begin(), test.end(), '/', '_');
  fs::path p = fs::path(SLIM_TEST_BINARY_DIR) / "onnx_test_tmp" / test / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

/// Runs a shell command, returning its exit status (-1 if it could not run).
inline int runCommand(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

}  // namespace slim::test

namespace slim::test {

/// max |got - want| / max |want| (shapes must match; returns +inf otherwise).
inline double relMaxError(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != DType::kF32 ||
      want.dtype() != DType::kF32)
    return INFINITY;
  double num = 0, den = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got.f32()[i] - want.f32()[i])));
    den = std::max(den, static_cast<double>(std::fabs(want.f32()[i])));
  }
  return den > 0 ? num / den : num;
}

}  // namespace slim::test
