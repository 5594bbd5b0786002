// Rank equivalence for tiny gradients (exact_sum.h, "Gradients on 2^k
// ranks"). Each rank's loss averages its own samples, so on two ranks every
// gradient partial is exactly twice the one-rank partial. The fixed point
// truncates below 2^-41; converting 2x the partial would truncate at another
// relative position, so partials of that size would give other bits on two
// ranks than on one. The ops convert a two-rank partial as partial / 2
// (FixedSum's shift) and do not divide the sum over ranks: the same integers,
// the same bits, at any magnitude. Two thread-ranks (ExactSync) stand in for
// the ranks; dy is scaled as the losses scale it.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/nn_extra_util.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

using test::expectTinyRankExact;
using test::randomTensor;

// 1e-14: the partials (sums of 8 samples' products) lie around 1e-14 to
// 1e-13, below 2^-41 (4.5e-13); 1: ordinary gradients, exact before too.
constexpr float kScales[] = {1e-14f, 1.f};

TEST(TinyGradExact, ConvWeightAndBias) {
  for (float s : kScales)
    expectTinyRankExact(
        "Conv", {},
        {randomTensor({16, 3, 6, 6}, 1), randomTensor({4, 3, 3, 3}, 2), randomTensor({4}, 3)},
        {false, true, true}, s);
}

TEST(TinyGradExact, GemmAndMatMulWeights) {
  for (float s : kScales) {
    expectTinyRankExact("Gemm", {},
                        {randomTensor({16, 12}, 4), randomTensor({12, 5}, 5), randomTensor({5}, 6)},
                        {false, true, true}, s);
    expectTinyRankExact("MatMul", {}, {randomTensor({16, 5, 12}, 7), randomTensor({12, 9}, 8)},
                        {false, true}, s);
  }
}

TEST(TinyGradExact, BatchNormScaleBiasAndDx) {
  ops::Attrs a;
  a.set("epsilon", 1e-3f);
  for (float s : kScales)
    expectTinyRankExact(
        "BatchNormalization", a,
        {randomTensor({16, 3, 4, 4}, 9), randomTensor({3}, 10, 0.5f, 1.5f), randomTensor({3}, 11),
         randomTensor({3}, 12), randomTensor({3}, 13, 0.5f, 1.5f)},
        {false, true, true, false, false}, s, true);
}

TEST(TinyGradExact, NormsPReluAndBroadcastWeights) {
  ops::Attrs ln;
  ln.set("axis", int64_t{-1});
  ln.set("epsilon", 1e-3f);
  ops::Attrs inorm;
  inorm.set("epsilon", 1e-3f);
  for (float s : kScales) {
    expectTinyRankExact(
        "LayerNormalization", ln,
        {randomTensor({16, 7, 33}, 14), randomTensor({33}, 15, 0.5f, 1.5f), randomTensor({33}, 16)},
        {false, true, true}, s);
    expectTinyRankExact(
        "InstanceNormalization", inorm,
        {randomTensor({16, 4, 5, 3}, 17), randomTensor({4}, 18, 0.5f, 1.5f), randomTensor({4}, 19)},
        {false, true, true}, s);
    expectTinyRankExact("PRelu", {}, {randomTensor({16, 3, 4, 5}, 20), randomTensor({3, 1, 1}, 21)},
                        {false, true}, s);
    for (const char* op : {"Add", "Mul"})
      expectTinyRankExact(op, {},
                          {randomTensor({16, 7, 33}, 22), randomTensor({33}, 23, 0.5f, 1.5f)},
                          {false, true}, s);
  }
}

// The mechanism alone: one rank's partials p, two ranks' 2p (each rank's
// share of the chunks), all below 2^-41. Summed over the ranks with the
// shift, the result has the one-rank bits; converting 2p as is and dividing
// the sum by two (the former rule) does not.
struct SumProbe : ops::Op {
  void forward(const std::vector<Tensor*>&, const std::vector<Tensor*>&,
               ops::RunContext&) override {}
  std::vector<float> finish(const std::vector<float>& p, int64_t count, int64_t n,
                            rank_reduction::StateSync* sync) {
    setRankReducedInputs({true});
    ops::RunContext ctx;
    ctx.sync = sync;
    rank_reduction::FixedSum sum;
    std::vector<float> out(static_cast<size_t>(n));
    finishPartials(0, p.data(), count, n, sum, ctx, out.data());
    return out;
  }
};

TEST(TinyGradExact, FixedSumShiftGivesOneRankIntegers) {
  const int64_t count = 4, n = 4096;  // 4 chunks: 2 per rank
  std::vector<float> p(static_cast<size_t>(count * n));
  uint32_t seed = 5;
  for (float& v : p) {
    seed = seed * 1664525u + 1013904223u;
    v = (static_cast<float>(seed >> 8) / 16777216.f - 0.5f) * 1e-13f;
  }
  SumProbe one;
  const std::vector<float> want = one.finish(p, count, n, nullptr);
  test::ExactSync sync(2);
  std::vector<float> got[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      std::vector<float> mine(p.begin() + r * 2 * n, p.begin() + (r + 1) * 2 * n);
      for (float& v : mine) v *= 2.f;
      SumProbe op;
      got[r] = op.finish(mine, 2, n, &sync);
    });
  for (auto& t : threads) t.join();
  int64_t former_differs = 0;
  for (int r = 0; r < 2; ++r)
    for (int64_t k = 0; k < n; ++k)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[r][k]), std::bit_cast<uint32_t>(want[k]))
          << "rank " << r << " element " << k;
  // The former rule, for contrast: 2p converted unshifted, sum halved.
  for (int64_t k = 0; k < n; ++k) {
    bool bad = false;
    rank_reduction::Fixed v = 0;
    for (int64_t c = 0; c < count; ++c)
      v += rank_reduction::detail::toFixed(2.f * p[c * n + k], &bad);
    const float former = static_cast<float>(rank_reduction::detail::fromFixed(v) / 2);
    former_differs += former != want[k];
  }
  EXPECT_GT(former_differs, n / 4) << "partials this small must truncate differently unshifted";
}

}  // namespace
}  // namespace slim
