// Shared helpers of the Paddle importer tests: import a built model, check the
// kernels exist (they are written in parallel; missing ones skip the test),
// run it forward in inference mode, random inputs and comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "tests/unit/models/paddle_writer.h"
#include "trainer/core/rng.h"
#include "trainer/graph/executor.h"
#include "trainer/models/paddle/paddle_import.h"
#include "trainer/ops/op.h"

namespace slim::test {

/// Names of node op types that the registry cannot create yet ("" if none).
inline std::string missingKernels(const graph::Graph& g) {
  std::string missing;
  for (const auto& n : g.nodes)
    if (!ops::OpRegistry::get().has(n.op_type) && missing.find(n.op_type) == std::string::npos)
      missing += n.op_type + " ";
  return missing;
}

#define SLIM_SKIP_IF_NO_KERNELS(g)                                                \
  do {                                                                            \
    std::string missing_ = ::slim::test::missingKernels(g);                       \
    if (!missing_.empty()) GTEST_SKIP() << "kernels not registered yet: " << missing_; \
  } while (0)

/// Imports `b` through the combined-params byte path.
inline graph::Graph importBuilt(const PaddleModelBuilder& b) {
  return models::importPaddleBytes(b.programBytes(), b.combinedParams(), "test_model");
}

/// Runs `g` forward (inference) and returns every graph output.
inline std::map<std::string, Tensor> runForward(graph::Graph& g,
                                                const std::map<std::string, Tensor>& feeds) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ex.forward(feeds, ctx);
  std::map<std::string, Tensor> out;
  for (const auto& o : g.outputs) out[o.name] = ex.value(o.name);
  return out;
}

/// Uniform random floats in [lo, hi).
inline Tensor randomTensor(const Shape& s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(s);
  Rng rng(seed);
  for (int64_t k = 0; k < t.numel(); ++k) t.f32()[k] = lo + (hi - lo) * rng.uniform();
  return t;
}

/// Expects equal shapes and elementwise |a-b| <= tol*(1+|b|).
inline void expectClose(const Tensor& got, const Tensor& want, float tol, const std::string& what) {
  ASSERT_EQ(shapeStr(got.shape()), shapeStr(want.shape())) << what;
  for (int64_t k = 0; k < want.numel(); ++k)
    ASSERT_NEAR(got.f32()[k], want.f32()[k], tol * (1.f + std::fabs(want.f32()[k])))
        << what << " at flat index " << k;
}

}  // namespace slim::test
