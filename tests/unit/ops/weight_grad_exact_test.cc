// Weight gradients a transformer needs reduced exactly over the batch and
// over ranks (Op::reducesGradOverRanks): MatMul's weight (folded x[N,T,K] @
// w[K,N'] and with batch dimensions), a bias / norm scale of Add, Sub, Mul,
// Div broadcast over the batch, and Gather's table (an Embedding on int64
// token ids). Each is gradient-checked on its exact path, and the whole
// batch on one rank gives the bits of its halves on two thread-ranks.
#include <gtest/gtest.h>

#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/nn_extra_util.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

using test::expectRankExact;
using test::randomTensor;

test::GradCheckOptions exactPath() {
  test::GradCheckOptions o;
  o.rank_reduced = true;
  return o;
}

TEST(WeightGradExact, MatMulGradients) {
  // Folded: the weight has no batch dimensions.
  test::gradCheck("MatMul", {}, {randomTensor({3, 2, 4}, 1), randomTensor({4, 5}, 2)}, 1);
  test::gradCheck("MatMul", {}, {randomTensor({3, 2, 4}, 1), randomTensor({4, 5}, 2)}, 1,
                  exactPath());
  test::gradCheck("MatMul", {}, {randomTensor({5, 4}, 3), randomTensor({4, 3}, 4)}, 1,
                  exactPath());
  // Batch dimensions on the weight (one partial per output batch entry).
  test::gradCheck("MatMul", {}, {randomTensor({2, 3, 2, 4}, 5), randomTensor({3, 4, 2}, 6)}, 1,
                  exactPath());
}

TEST(WeightGradExact, MatMulWeightIsRankExact) {
  expectRankExact("MatMul", {}, {randomTensor({16, 5, 12}, 7), randomTensor({12, 9}, 8)},
                  {false, true});
  expectRankExact("MatMul", {}, {randomTensor({16, 24}, 9), randomTensor({24, 7}, 10)},
                  {false, true});
  expectRankExact("MatMul", {}, {randomTensor({16, 2, 3, 6}, 11), randomTensor({2, 6, 5}, 12)},
                  {false, true});
}

// batch_first attention projects x transposed to [T, N, K]: the samples are
// dimension 1. Halves of N on two thread-ranks still give the whole batch's
// bits (per-rank batch a multiple of kSumChunk), for T = 3 and T = 12.
TEST(WeightGradExact, MatMulWeightIsRankExactWithSamplesInDimension1) {
  for (int64_t T : {3, 12}) {
    SCOPED_TRACE(T);
    const int64_t N = 16, K = 6, M = 5;
    const Tensor x = randomTensor({T, N, K}, 30 + static_cast<uint64_t>(T));
    const Tensor w = randomTensor({K, M}, 31);
    const Tensor dy = randomTensor({T, N, M}, 32);
    auto half = [&](const Tensor& t, int r) {  // samples [8r, 8r + 8) of dimension 1
      const int64_t inner = t.dim(2);
      Tensor out({T, N / 2, inner});
      for (int64_t i = 0; i < T; ++i)
        std::memcpy(out.f32() + i * (N / 2) * inner, t.f32() + (i * N + r * N / 2) * inner,
                    sizeof(float) * static_cast<size_t>(N / 2 * inner));
      return out;
    };
    const std::vector<bool> params{false, true};
    const auto full = test::grads("MatMul", {}, {x, w}, dy, nullptr, params);
    const auto res = test::onTwoRanks([&](int r, test::ExactSync* sync) {
      return test::grads("MatMul", {}, {half(x, r), w}, half(dy, r), sync, params);
    });
    for (int r = 0; r < 2; ++r)
      for (int64_t k = 0; k < w.numel(); ++k)
        ASSERT_EQ(res[r][1].f32()[k] * 2.f, full[1].f32()[k]) << "rank " << r << " element " << k;
  }
}

TEST(WeightGradExact, BroadcastBinaryGradients) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    SCOPED_TRACE(op);
    // A [N, T, D] activation and a [D] weight, either side.
    test::gradCheck(op, {}, {randomTensor({3, 2, 4}, 13), randomTensor({4}, 14, 0.5f, 1.5f)}, 1,
                    exactPath());
    test::gradCheck(op, {}, {randomTensor({4}, 15, 0.5f, 1.5f), randomTensor({3, 2, 4}, 16, 0.5f, 1.5f)},
                    1, exactPath());
    // Same shapes (a batch of one meeting a [1, T, D] weight).
    test::gradCheck(op, {}, {randomTensor({1, 2, 4}, 17), randomTensor({1, 2, 4}, 18, 0.5f, 1.5f)},
                    1, exactPath());
  }
}

TEST(WeightGradExact, BroadcastBinaryWeightIsRankExact) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    SCOPED_TRACE(op);
    expectRankExact(op, {}, {randomTensor({16, 7, 33}, 19), randomTensor({33}, 20, 0.5f, 1.5f)},
                    {false, true});
    expectRankExact(op, {}, {randomTensor({16, 7, 33}, 21), randomTensor({7, 1}, 22, 0.5f, 1.5f)},
                    {false, true});
  }
}

// Token ids [n, t] in [0, vocab), repeats included.
Tensor tokenIds(int64_t n, int64_t t, int64_t vocab, uint64_t seed) {
  Tensor ids({n, t}, DType::kI64);
  Rng rng(seed);
  for (int64_t i = 0; i < ids.numel(); ++i)
    ids.data<int64_t>()[i] = static_cast<int64_t>(rng.uniform() * static_cast<float>(vocab)) % vocab;
  return ids;
}

TEST(WeightGradExact, EmbeddingGatherGradient) {
  // The table is input 0 (data), the int64 ids input 1: repeated ids add up.
  test::gradCheck("Gather", {}, {randomTensor({10, 4}, 23), tokenIds(3, 5, 10, 24)}, 1);
  test::gradCheck("Gather", {}, {randomTensor({10, 4}, 23), tokenIds(3, 5, 10, 24)}, 1,
                  exactPath());
}

TEST(WeightGradExact, EmbeddingTableIsRankExact) {
  const Tensor table = randomTensor({50, 24}, 25);
  const Tensor ids = tokenIds(16, 11, 50, 26);
  const Tensor dy = randomTensor({16, 11, 24}, 27);
  const std::vector<bool> params{true, false};
  auto slice = [](const Tensor& t, int64_t b, int64_t e) {
    Shape s = t.shape();
    const int64_t inner = t.numel() / s[0];
    s[0] = e - b;
    Tensor out(s, t.dtype());
    const size_t es = dtypeSize(t.dtype());
    std::memcpy(out.raw(), static_cast<const char*>(t.raw()) + b * inner * es,
                static_cast<size_t>((e - b) * inner) * es);
    return out;
  };
  const auto full = test::grads("Gather", {}, {table, ids}, dy, nullptr, params);
  const auto res = test::onTwoRanks([&](int r, test::ExactSync* sync) {
    return test::grads("Gather", {}, {table, slice(ids, r * 8, r * 8 + 8)},
                       slice(dy, r * 8, r * 8 + 8), sync, params);
  });
  for (int r = 0; r < 2; ++r)
    for (int64_t k = 0; k < table.numel(); ++k)
      ASSERT_EQ(res[r][0].f32()[k] * 2.f, full[0].f32()[k]) << "rank " << r << " element " << k;
}

}  // namespace
}  // namespace slim
