// Gemm (transA/transB, alpha/beta, every broadcast form of C) and MatMul
// (1-D promotion, batch broadcasting): forward against naive loops and
// finite-difference gradients.
#include <gtest/gtest.h>

#include <omp.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

struct GemmCase {
  std::string name;
  int64_t m, k, n;
  bool ta, tb;
  float alpha, beta;
  Shape c_shape;  // empty vector + has_c=false: no C
  bool has_c;
};
// gtest prints the case name instead of the bytes of the struct.
void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.name; }


std::vector<Tensor> gemmInputs(const GemmCase& g, uint64_t seed) {
  std::vector<Tensor> in{
      test::randomTensor(g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k}, seed),
      test::randomTensor(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n}, seed + 1)};
  if (g.has_c) in.push_back(test::randomTensor(g.c_shape, seed + 2));
  return in;
}

ops::Attrs gemmAttrs(const GemmCase& g) {
  ops::Attrs a;
  a.set("transA", int64_t{g.ta});
  a.set("transB", int64_t{g.tb});
  a.set("alpha", g.alpha);
  a.set("beta", g.beta);
  return a;
}

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, ForwardMatchesNaive) {
  const GemmCase& g = GetParam();
  auto op = ops::OpRegistry::get().create("Gemm", gemmAttrs(g), g.name);
  auto in = gemmInputs(g, 3);
  auto y = test::runForward(*op, in, 1, false)[0];
  ASSERT_EQ(y.shape(), (Shape{g.m, g.n}));
  const float* a = in[0].f32();
  const float* b = in[1].f32();
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < g.k; ++l)
        s += (g.ta ? a[l * g.m + i] : a[i * g.k + l]) * (g.tb ? b[j * g.k + l] : b[l * g.n + j]);
      s *= g.alpha;
      if (g.has_c) {
        // Broadcast by numpy rules: align trailing dimensions.
        const Shape& cs = g.c_shape;
        int64_t ci = cs.size() == 2 && cs[0] != 1 ? i : 0;
        int64_t cj = !cs.empty() && cs.back() != 1 ? j : 0;
        s += g.beta * in[2].f32()[ci * (cs.empty() ? 1 : cs.back()) + cj];
      }
      ASSERT_NEAR(y.f32()[i * g.n + j], s, 1e-4) << g.name << " (" << i << "," << j << ")";
    }
}

TEST_P(GemmTest, GradientsMatchFiniteDifferences) {
  const GemmCase& g = GetParam();
  test::gradCheck("Gemm", gemmAttrs(g), gemmInputs(g, 11), 1);
}

const GemmCase kGemmCases[] = {
    {"plain_noC", 3, 4, 5, false, false, 1.f, 1.f, {}, false},
    {"transA_fullC", 3, 4, 5, true, false, 0.5f, 2.f, {3, 5}, true},
    {"transB_rowC", 4, 3, 2, false, true, 1.f, 1.f, {2}, true},
    {"transAB_colC", 2, 5, 3, true, true, -1.5f, 0.7f, {2, 1}, true},
    {"scalarC", 3, 2, 4, false, false, 1.f, 3.f, {}, true},
    {"oneC", 3, 2, 4, false, true, 2.f, 1.f, {1}, true},
    {"one_by_nC", 2, 3, 4, true, false, 1.f, -1.f, {1, 4}, true},
};
INSTANTIATE_TEST_SUITE_P(Cases, GemmTest, ::testing::ValuesIn(kGemmCases),
                         [](const auto& info) { return info.param.name; });

// Large enough for several tiles of the GEMM kernel; gradients against naive
// products.
TEST(GemmLarge, BackwardMatchesNaive) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      GemmCase g{"large", 37, 45, 29, ta, tb, 0.5f, 1.f, {29}, true};
      auto op = ops::OpRegistry::get().create("Gemm", gemmAttrs(g), "large");
      auto in = gemmInputs(g, 41);
      Tensor dy = test::randomTensor({g.m, g.n}, 42);
      ops::RunContext ctx;
      Tensor y, da, db, dc;
      std::vector<Tensor*> pin{&in[0], &in[1], &in[2]};
      op->forward(pin, {&y}, ctx);
      op->backward(pin, {&y}, {&dy}, {&da, &db, &dc}, ctx);
      const float* a = in[0].f32();
      const float* b = in[1].f32();
      auto A = [&](int64_t i, int64_t l) { return ta ? a[l * g.m + i] : a[i * g.k + l]; };
      auto B = [&](int64_t l, int64_t j) { return tb ? b[j * g.k + l] : b[l * g.n + j]; };
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t l = 0; l < g.k; ++l) {
          double s = 0;
          for (int64_t j = 0; j < g.n; ++j) s += dy.f32()[i * g.n + j] * B(l, j);
          ASSERT_NEAR(da.f32()[ta ? l * g.m + i : i * g.k + l], 0.5 * s, 1e-3);
        }
      for (int64_t l = 0; l < g.k; ++l)
        for (int64_t j = 0; j < g.n; ++j) {
          double s = 0;
          for (int64_t i = 0; i < g.m; ++i) s += A(i, l) * dy.f32()[i * g.n + j];
          ASSERT_NEAR(db.f32()[tb ? j * g.k + l : l * g.n + j], 0.5 * s, 1e-3);
        }
      for (int64_t j = 0; j < g.n; ++j) {
        double s = 0;
        for (int64_t i = 0; i < g.m; ++i) s += dy.f32()[i * g.n + j];
        ASSERT_NEAR(dc.f32()[j], s, 1e-3);
      }
    }
}

TEST(GemmErrors, RejectsBadShapes) {
  auto op = ops::OpRegistry::get().create("Gemm", ops::Attrs{}, "bad_gemm");
  std::vector<Tensor> in{Tensor({2, 3}), Tensor({4, 5})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ShapeError);
  std::vector<Tensor> in2{Tensor({2, 3}), Tensor({3, 5}), Tensor({3, 5})};
  EXPECT_THROW(test::runForward(*op, in2, 1, false), ShapeError);
}

struct MatMulCase {
  std::string name;
  Shape a, b, out;
};
void PrintTo(const MatMulCase& c, std::ostream* os) { *os << c.name; }


// Naive numpy matmul over explicit broadcasting of index tuples.
Tensor naiveMatMul(const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const size_t r = std::max(as.size(), bs.size()) - 2;
  as.insert(as.begin(), r + 2 - as.size(), 1);
  bs.insert(bs.begin(), r + 2 - bs.size(), 1);
  Shape ob(r);
  for (size_t d = 0; d < r; ++d) ob[d] = std::max(as[d], bs[d]);
  Tensor y(out_shape);
  const int64_t batch = numelOf(ob);
  for (int64_t bi = 0; bi < batch; ++bi) {
    int64_t ao = 0, bo = 0, rem = bi;
    std::vector<int64_t> idx(r);
    for (size_t d = r; d-- > 0;) { idx[d] = rem % ob[d]; rem /= ob[d]; }
    for (size_t d = 0; d < r; ++d) {
      ao = ao * as[d] + (as[d] == 1 ? 0 : idx[d]);
      bo = bo * bs[d] + (bs[d] == 1 ? 0 : idx[d]);
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t l = 0; l < K; ++l)
          s += a.f32()[ao * M * K + i * K + l] * b.f32()[bo * K * N + l * N + j];
        y.f32()[(bi * M + i) * N + j] = static_cast<float>(s);
      }
  }
  return y;
}

class MatMulTest : public ::testing::TestWithParam<MatMulCase> {};

TEST_P(MatMulTest, ForwardMatchesNaive) {
  const MatMulCase& c = GetParam();
  auto op = ops::OpRegistry::get().create("MatMul", ops::Attrs{}, c.name);
  std::vector<Tensor> in{test::randomTensor(c.a, 5), test::randomTensor(c.b, 6)};
  auto y = test::runForward(*op, in, 1, false)[0];
  ASSERT_EQ(y.shape(), c.out) << c.name;
  auto ref = naiveMatMul(in[0], in[1], c.out);
  for (int64_t i = 0; i < ref.numel(); ++i)
    ASSERT_NEAR(y.f32()[i], ref.f32()[i], 1e-4f) << c.name << " element " << i;
}

TEST_P(MatMulTest, GradientsMatchFiniteDifferences) {
  const MatMulCase& c = GetParam();
  test::gradCheck("MatMul", ops::Attrs{},
                  {test::randomTensor(c.a, 15), test::randomTensor(c.b, 16)}, 1);
}

const MatMulCase kMatMulCases[] = {
    {"mat_mat", {3, 4}, {4, 2}, {3, 2}},
    {"vec_mat", {4}, {4, 3}, {3}},
    {"mat_vec", {3, 4}, {4}, {3}},
    {"vec_vec", {4}, {4}, {}},
    {"batch_mat_folded", {2, 3, 4}, {4, 2}, {2, 3, 2}},
    {"mat_batch", {3, 4}, {2, 4, 2}, {2, 3, 2}},
    {"batch_batch", {2, 3, 4}, {2, 4, 2}, {2, 3, 2}},
    {"broadcast_both", {2, 1, 2, 3}, {3, 3, 2}, {2, 3, 2, 2}},
    {"batch_vec", {2, 3, 4}, {4}, {2, 3}},
    {"vec_batch", {3}, {2, 3, 2}, {2, 2}},
};
INSTANTIATE_TEST_SUITE_P(Cases, MatMulTest, ::testing::ValuesIn(kMatMulCases),
                         [](const auto& info) { return info.param.name; });

// Batched products run their entries on the threads (one GEMM each) when no
// two entries share a gradient: the bits are those of one thread, forward
// and backward, with and without a broadcast operand.
TEST(MatMulThreads, BatchedEntriesMatchOneThread) {
  const int saved = omp_get_max_threads();
  for (const auto& [as, bs] : std::vector<std::pair<Shape, Shape>>{{{12, 37, 16}, {12, 16, 29}},
                                                                   {{3, 4, 37, 16}, {1, 4, 16, 29}},
                                                                   {{37, 16}, {5, 16, 29}}}) {
    SCOPED_TRACE(shapeStr(as) + " @ " + shapeStr(bs));
    const Tensor a = test::randomTensor(as, 21), b = test::randomTensor(bs, 22);
    std::vector<std::vector<Tensor>> res;
    for (int t : {1, 2}) {
      omp_set_num_threads(t);
      auto op = ops::OpRegistry::get().create("MatMul", ops::Attrs{}, "m");
      std::vector<Tensor> in{a, b};
      std::vector<Tensor*> pin{&in[0], &in[1]};
      ops::RunContext ctx;
      Tensor y;
      op->forward(pin, {&y}, ctx);
      const Tensor dy = test::randomTensor(y.shape(), 23);
      std::vector<Tensor> g(2);
      op->backward(pin, {&y}, {&dy}, {&g[0], &g[1]}, ctx);
      res.push_back({y, g[0], g[1]});
    }
    omp_set_num_threads(saved);
    for (size_t j = 0; j < 3; ++j)
      ASSERT_EQ(0, std::memcmp(res[0][j].raw(), res[1][j].raw(), res[0][j].bytes()))
          << "tensor " << j;
  }
}

TEST(MatMulErrors, RejectsMismatch) {
  auto op = ops::OpRegistry::get().create("MatMul", ops::Attrs{}, "bad_matmul");
  std::vector<Tensor> in{Tensor({2, 3}), Tensor({4, 2})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ShapeError);
  std::vector<Tensor> in2{Tensor({2, 2, 3}), Tensor({3, 3, 2})};
  EXPECT_THROW(test::runForward(*op, in2, 1, false), ShapeError);
}

}  // namespace
}  // namespace slim
