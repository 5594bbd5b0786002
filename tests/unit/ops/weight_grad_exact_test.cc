// Weight gradients a transformer needs reduced exactly over the batch and
// over ranks (Op::reducesGradOverRanks): MatMul's weight (folded x[N,T,K] @
// w[K,N'] and with batch dimensions), a bias / norm scale of Add, Sub, Mul,
// Div broadcast over the batch, and Gather's table (an Embedding on int64
// token ids). Each is gradient-checked on its exact path, and the whole
// batch on one rank gives the bits of its halves on two thread-ranks.
#include <gtest/gtest.h>

#include <cmath>
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

// Where the executor says where the samples lie (sample_groups.h), MatMul
// and Gemm form one partial per group of kSumChunk samples over all their
// rows: samples in dimension 0 ([N, T, K], one block per group) or 1
// ([T, N, K], and Gemm's [T*N, K]: a group's rows gathered from T runs).
// Two thread-ranks with halves give the whole batch's bits, and the sums
// are A^T dY.
TEST(WeightGradExact, WeightGradientGroupsBySamples) {
  using rank_reduction::SampleLayout;
  const int64_t N = 16, K = 6, M = 5;
  for (int64_t T : {3, 12})
    for (int dim : {0, 1})
      for (const char* type : {"MatMul", "Gemm"}) {
        SCOPED_TRACE(std::string(type) + " T=" + std::to_string(T) + " dim " + std::to_string(dim));
        const Tensor x = randomTensor({dim == 0 ? N : T, dim == 0 ? T : N, K}, 40 + T);
        const Tensor w = randomTensor({K, M}, 41);
        const Tensor dy = randomTensor({dim == 0 ? N : T, dim == 0 ? T : N, M}, 42);
        // Samples [r * n, (r + 1) * n) of dimension `dim`, as Gemm's 2-D rows when asked.
        auto part = [&](const Tensor& t, int r, int64_t n, bool flat) {
          const int64_t inner = t.dim(2), outer = dim == 0 ? 1 : T, run = dim == 0 ? n * T : n;
          Tensor out(dim == 0 ? Shape{n, T, inner} : Shape{T, n, inner});
          for (int64_t o = 0; o < outer; ++o)
            std::memcpy(out.f32() + o * run * inner,
                        t.f32() + (o * (dim == 0 ? N * T : N) + r * run) * inner,
                        sizeof(float) * static_cast<size_t>(run * inner));
          return flat ? out.reshaped({out.numel() / inner, inner}) : out;
        };
        auto layout = [&](int64_t n) {
          return dim == 0 ? SampleLayout{1, n, T * K} : SampleLayout{T, n, K};
        };
        const bool gemm = std::string(type) == "Gemm";
        // Gemm with a bias C [M]: its gradient sums dy's columns by the same groups.
        const Tensor c = randomTensor({M}, 43);
        auto inputs = [&](int r, int64_t n) {
          std::vector<Tensor> in{part(x, r, n, gemm), w};
          if (gemm) in.push_back(c);
          return in;
        };
        const std::vector<bool> params{false, true, true};
        const auto full =
            test::grads(type, {}, inputs(0, N), part(dy, 0, N, gemm), nullptr, params, {layout(N)});
        const auto res = test::onTwoRanks([&](int r, test::ExactSync* sync) {
          return test::grads(type, {}, inputs(r, N / 2), part(dy, r, N / 2, gemm), sync, params,
                             {layout(N / 2)});
        });
        for (int r = 0; r < 2; ++r)
          for (int64_t k = 0; k < w.numel(); ++k)
            ASSERT_EQ(res[r][1].f32()[k] * 2.f, full[1].f32()[k]) << "rank " << r << " el " << k;
        for (int r = 0; gemm && r < 2; ++r)
          for (int64_t m = 0; m < M; ++m)
            ASSERT_EQ(res[r][2].f32()[m] * 2.f, full[2].f32()[m]) << "rank " << r << " bias " << m;
        for (int64_t m = 0; gemm && m < M; ++m) {
          double ref = 0;
          for (int64_t i = 0; i < N * T; ++i) ref += dy.f32()[i * M + m];
          ASSERT_NEAR(full[2].f32()[m], ref, 1e-4 * (1 + std::fabs(ref))) << "bias " << m;
        }
        const int64_t rows = N * T;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t m = 0; m < M; ++m) {
            double ref = 0;
            for (int64_t i = 0; i < rows; ++i)
              ref += static_cast<double>(x.f32()[i * K + k]) * dy.f32()[i * M + m];
            ASSERT_NEAR(full[1].f32()[k * M + m], ref, 1e-4 * (1 + std::fabs(ref)));
          }
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

// With the activation's samples known (the executor's sample layouts), a
// weight [D] broadcast over [N, T, D] or [T, N, D] sums its gradient by
// groups of kSumChunk samples (BinaryOp::groupGrad): against double sums of
// the terms, and the halves of N on two thread-ranks give the whole batch's
// bits, the weight on either side.
TEST(WeightGradExact, BroadcastBinaryWeightGroupsBySamples) {
  using rank_reduction::SampleLayout;
  const int64_t N = 16, T = 7, D = 33;
  for (int dim : {0, 1})
    for (int wi : {1, 0})
      for (const char* type : {"Add", "Sub", "Mul", "Div"}) {
        SCOPED_TRACE(std::string(type) + " samples in dim " + std::to_string(dim) + " weight " +
                     std::to_string(wi));
        const Tensor x = randomTensor({dim == 0 ? N : T, dim == 0 ? T : N, D}, 50, 0.5f, 1.5f);
        const Tensor w = randomTensor({D}, 51, 0.5f, 1.5f);
        const Tensor dy = randomTensor(x.shape(), 52);
        auto part = [&](const Tensor& t, int r, int64_t n) {  // samples [r n, (r + 1) n)
          const int64_t outer = dim == 0 ? 1 : T, run = dim == 0 ? n * T : n;
          Tensor out(dim == 0 ? Shape{n, T, D} : Shape{T, n, D});
          for (int64_t o = 0; o < outer; ++o)
            std::memcpy(out.f32() + o * run * D,
                        t.f32() + (o * (dim == 0 ? N * T : N) + r * run) * D,
                        sizeof(float) * static_cast<size_t>(run * D));
          return out;
        };
        auto layout = [&](int64_t n) {
          return dim == 0 ? SampleLayout{1, n, T * D} : SampleLayout{T, n, D};
        };
        auto run = [&](const Tensor& xs, const Tensor& dys, int64_t n,
                       rank_reduction::StateSync* sync) {
          std::vector<Tensor> in{xs, w};
          std::vector<bool> params{false, true};
          std::vector<SampleLayout> samples{layout(n), SampleLayout{}};
          if (wi == 0) {
            std::swap(in[0], in[1]);
            params = {true, false};
            std::swap(samples[0], samples[1]);
          }
          return test::grads(type, {}, in, dys, sync, params, samples);
        };
        const auto full = run(part(x, 0, N), part(dy, 0, N), N, nullptr);
        const auto res = test::onTwoRanks([&](int r, test::ExactSync* sync) {
          return run(part(x, r, N / 2), part(dy, r, N / 2), N / 2, sync);
        });
        for (int r = 0; r < 2; ++r)
          for (int64_t k = 0; k < D; ++k)
            ASSERT_EQ(res[r][wi].f32()[k] * 2.f, full[wi].f32()[k]) << "rank " << r << " el " << k;
        const std::string t = type;
        for (int64_t k = 0; k < D; ++k) {
          double ref = 0;
          for (int64_t i = 0; i < N * T; ++i) {
            const double g = dy.f32()[i * D + k], xv = x.f32()[i * D + k], wv = w.f32()[k];
            const double xa = wi == 1 ? xv : wv, zb = wi == 1 ? wv : xv;  // Add(a, b) operands
            if (t == "Add") ref += g;
            if (t == "Sub") ref += wi == 0 ? g : -g;
            if (t == "Mul") ref += g * (wi == 0 ? zb : xa);
            if (t == "Div") ref += wi == 0 ? g / zb : -g * xa / (zb * zb);
          }
          ASSERT_NEAR(full[wi].f32()[k], ref, 1e-4 * (1 + std::fabs(ref))) << "el " << k;
        }
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
