// PACT's alpha gradient on two thread-ranks (each with twice the dy, as each
// rank's loss averages its own samples) has the bits of the whole batch on
// one rank, for ordinary gradients and for gradients whose per-element terms
// lie below the fixed point's 2^-41 (exact_sum.h, "Gradients on 2^k ranks";
// the ops' cases: tests/unit/ops/tiny_grad_exact_test.cc).
#include <gtest/gtest.h>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/nn_extra_util.h"
#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {
namespace {

TEST(Pact, AlphaGradientIsRankExactAtAnyMagnitude) {
  registerQuantOps(ops::OpRegistry::get());
  // |x| up to 3 around alpha 1.3: about half the elements clipped.
  for (float s : {1e-14f, 1.f})
    test::expectTinyRankExact(
        kPactOp, ops::Attrs{},
        {test::randomTensor({16, 3, 5, 5}, 31, -3.f, 3.f), Tensor::fromVector({1}, {1.3f})},
        {false, true}, s);
}

}  // namespace
}  // namespace slim::compress
