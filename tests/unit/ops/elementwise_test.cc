// Broadcasting arithmetic: broadcastShape rules, Add/Sub/Mul/Div/Sum forward
// against a naive index-mapping loop (scalar, per-channel, two-sided cases),
// int64 forward, finite-difference gradients for both operands, and the
// same bits on one, two and three threads (forward and backward).
#include <gtest/gtest.h>

#include <omp.h>

#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/broadcast.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

// Offset into an operand of shape `s` for output multi-index `idx` (rank r).
int64_t bcastOffset(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  const size_t lead = idx.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d)
    off = off * s[d] + (s[d] == 1 ? 0 : idx[lead + d]);
  return off;
}

// Naive broadcast reference: out[idx] = f(a[..], b[..]).
std::vector<float> naive(const Tensor& a, const Tensor& b, const Shape& os,
                         const std::function<float(float, float)>& f) {
  std::vector<float> r(numelOf(os));
  std::vector<int64_t> idx(os.size(), 0);
  for (int64_t k = 0; k < numelOf(os); ++k) {
    int64_t rem = k;
    for (int d = static_cast<int>(os.size()) - 1; d >= 0; --d) {
      idx[d] = rem % os[d];
      rem /= os[d];
    }
    r[k] = f(a.f32()[bcastOffset(a.shape(), idx)], b.f32()[bcastOffset(b.shape(), idx)]);
  }
  return r;
}

struct Pair {
  Shape a, b, out;
};

const std::vector<Pair> kPairs = {
    {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},       // same shape
    {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 3, 4, 5}},  // per-channel NCHW
    {{3, 1, 1}, {2, 3, 4, 2}, {2, 3, 4, 2}},     // per-channel [C,1,1] on the left
    {{}, {2, 3}, {2, 3}},                   // scalar
    {{4, 1}, {1, 5}, {4, 5}},               // two-sided
    {{2, 1, 3}, {4, 1}, {2, 4, 3}},         // mixed ranks
    {{5}, {3, 1}, {3, 5}},
};

TEST(Broadcast, ShapeRules) {
  for (const auto& p : kPairs) {
    EXPECT_EQ(ops::broadcastShape(p.a, p.b), p.out) << shapeStr(p.a) << shapeStr(p.b);
    EXPECT_EQ(ops::broadcastShape(p.b, p.a), p.out);
  }
  EXPECT_THROW(ops::broadcastShape({2, 3}, {4}), ShapeError);
  EXPECT_THROW(ops::broadcastShape({2, 3, 4}, {3, 3, 4}), ShapeError);
}

TEST(Broadcast, ReduceToSumsRepeatedElements) {
  ops::BroadcastPlan plan;
  plan.init({2, 3, 4}, {3, 1});
  Tensor g = test::randomTensor({2, 3, 4}, 3);
  std::vector<float> db(3, 0.f), da(24);
  plan.reduceTo(1, g.f32(), db.data());
  plan.reduceTo(0, g.f32(), da.data());
  for (int c = 0; c < 3; ++c) {
    float s = 0;
    for (int n = 0; n < 2; ++n)
      for (int w = 0; w < 4; ++w) s += g.f32()[(n * 3 + c) * 4 + w];
    EXPECT_NEAR(db[c], s, 1e-5);
  }
  for (int i = 0; i < 24; ++i) EXPECT_EQ(da[i], g.f32()[i]);
}

struct OpCase {
  const char* type;
  std::function<float(float, float)> f;
};

const std::vector<OpCase> kOps = {
    {"Add", [](float x, float y) { return x + y; }},
    {"Sub", [](float x, float y) { return x - y; }},
    {"Mul", [](float x, float y) { return x * y; }},
    {"Div", [](float x, float y) { return x / y; }},
};

TEST(Elementwise, ForwardMatchesNaive) {
  for (const auto& oc : kOps) {
    auto op = ops::OpRegistry::get().create(oc.type, {}, "t");
    for (size_t k = 0; k < kPairs.size(); ++k) {
      std::vector<Tensor> in = {test::randomTensor(kPairs[k].a, 10 + k),
                                test::randomTensor(kPairs[k].b, 20 + k, 0.5f, 2.f)};
      auto out = test::runForward(*op, in, 1, false);
      ASSERT_EQ(out[0].shape(), kPairs[k].out) << oc.type;
      auto ref = naive(in[0], in[1], kPairs[k].out, oc.f);
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_FLOAT_EQ(out[0].f32()[i], ref[i]) << oc.type << " case " << k << " at " << i;
    }
  }
}

TEST(Elementwise, Int64Forward) {
  auto op = ops::OpRegistry::get().create("Mul", {}, "t");
  std::vector<Tensor> in = {Tensor::fromInts({3}, {2, 3, 4}), Tensor::fromInts({}, {-5})};
  auto out = test::runForward(*op, in, 1, false);
  ASSERT_EQ(out[0].dtype(), DType::kI64);
  EXPECT_EQ(out[0].data<int64_t>()[0], -10);
  EXPECT_EQ(out[0].data<int64_t>()[2], -20);
  auto div = ops::OpRegistry::get().create("Div", {}, "t");
  std::vector<Tensor> in2 = {Tensor::fromInts({2}, {7, 9}), Tensor::fromInts({1}, {2})};
  auto q = test::runForward(*div, in2, 1, false);
  EXPECT_EQ(q[0].data<int64_t>()[0], 3);
  EXPECT_EQ(q[0].data<int64_t>()[1], 4);
  std::vector<Tensor> in3 = {Tensor::fromInts({1}, {1}), Tensor::fromInts({1}, {0})};
  EXPECT_THROW(test::runForward(*div, in3, 1, false), Error);
}

TEST(Elementwise, MismatchedShapesThrow) {
  auto op = ops::OpRegistry::get().create("Add", {}, "t");
  std::vector<Tensor> in = {Tensor({2, 3}), Tensor({4})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ShapeError);
}

TEST(Elementwise, GradientsBothOperands) {
  for (const auto& oc : kOps) {
    for (size_t k = 0; k < kPairs.size(); ++k) {
      SCOPED_TRACE(std::string(oc.type) + " " + shapeStr(kPairs[k].a) + shapeStr(kPairs[k].b));
      test::gradCheck(oc.type, {},
                      {test::randomTensor(kPairs[k].a, 30 + k),
                       test::randomTensor(kPairs[k].b, 40 + k, 0.5f, 2.f)},
                      1);
    }
  }
}

TEST(Elementwise, SumVariadic) {
  std::vector<Tensor> in = {test::randomTensor({2, 3}, 1), test::randomTensor({3}, 2),
                            test::randomTensor({2, 1}, 3)};
  auto op = ops::OpRegistry::get().create("Sum", {}, "t");
  auto out = test::runForward(*op, in, 1, false);
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_FLOAT_EQ(out[0].f32()[i * 3 + j],
                      in[0].f32()[i * 3 + j] + in[1].f32()[j] + in[2].f32()[i]);
  test::gradCheck("Sum", {}, in, 1);
}

// forRows over any range visits exactly forEachRow's rows (offsets and
// operand positions), and broadcastApply split over threads writes what one
// thread writes, for shapes that broadcast on either side.
TEST(Broadcast, RowRangesAndThreadsMatchOneSweep) {
  struct Row {
    int64_t o, ia, ib, n, sa, sb;
    bool operator==(const Row&) const = default;
  };
  const std::pair<Shape, Shape> cases[] = {{{4, 3, 5}, {4, 3, 5}}, {{4, 3, 5}, {3, 1}},
                                           {{2, 1, 6}, {2, 7, 1}}, {{64, 33, 40}, {33, 1}},
                                           {{8, 197, 384}, {384}}, {{5}, {}}};
  for (const auto& [sa, sb] : cases) {
    ops::BroadcastPlan p;
    p.init(sa, sb);
    std::vector<Row> all, parts;
    p.forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t a, int64_t b) {
      all.push_back({o, ia, ib, n, a, b});
    });
    const int64_t rows = p.rows(), cut = rows / 3;
    for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, cut}, {cut, rows}})
      p.forRows(r0, r1, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t a, int64_t b) {
        parts.push_back({o, ia, ib, n, a, b});
      });
    EXPECT_TRUE(all == parts) << shapeStr(sa) << " " << shapeStr(sb);
    std::vector<float> a(static_cast<size_t>(numelOf(sa))), b(static_cast<size_t>(numelOf(sb)));
    for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i % 97) - 3.f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = 1.f + 0.5f * static_cast<float>(i % 13);
    std::vector<float> y[2];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t + 1);
      y[t].assign(static_cast<size_t>(p.numel()), 0.f);
      ops::broadcastApply<float>(p, a.data(), b.data(), y[t].data(),
                                 [](float x, float z) { return x / z + x * z; });
    }
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)))
        << shapeStr(sa) << " " << shapeStr(sb);
  }
}

// forElements over cut ranges visits each output element once with
// forEachRow's operand positions; forOperandRange over disjoint operand
// ranges gives each operand element the output elements of one sweep, in
// the sweep's order (so sums into it keep their order on any thread).
TEST(Broadcast, ElementAndOperandRangesMatchOneSweep) {
  const std::pair<Shape, Shape> cases[] = {{{4, 3, 5}, {4, 3, 5}},
                                           {{4, 3, 5}, {3, 1}},
                                           {{2, 1, 6}, {2, 7, 1}},
                                           {{64, 33, 40}, {33, 1}},
                                           {{8, 19, 38}, {38}},
                                           {{5}, {}},
                                           {{}, {}},
                                           {{3, 1, 7}, {1, 5, 1}}};
  for (const auto& [sa, sb] : cases) {
    SCOPED_TRACE(shapeStr(sa) + " " + shapeStr(sb));
    ops::BroadcastPlan p;
    p.init(sa, sb);
    const int64_t n = p.numel();
    std::vector<int64_t> ia(static_cast<size_t>(n), -1), ib(ia);  // one sweep, per element
    p.forEachRow([&](int64_t o, int64_t a, int64_t b, int64_t len, int64_t x, int64_t z) {
      for (int64_t i = 0; i < len; ++i) {
        ia[o + i] = a + i * x;
        ib[o + i] = b + i * z;
      }
    });
    for (int64_t parts : {1, 2, 3, 7}) {
      std::vector<int> seen(static_cast<size_t>(n), 0);
      for (int64_t k = 0; k < parts; ++k)
        p.forElements(n * k / parts, n * (k + 1) / parts,
                      [&](int64_t o, int64_t a, int64_t b, int64_t len, int64_t x, int64_t z) {
                        for (int64_t i = 0; i < len; ++i) {
                          ++seen[o + i];
                          EXPECT_EQ(ia[o + i], a + i * x);
                          EXPECT_EQ(ib[o + i], b + i * z);
                        }
                      });
      for (int64_t o = 0; o < n; ++o) EXPECT_EQ(seen[o], 1) << "element " << o;
      for (int which = 0; which < 2; ++which) {
        const std::vector<int64_t>& pos = which == 0 ? ia : ib;
        std::map<int64_t, std::vector<int64_t>> want, got;  // operand element -> outputs
        for (int64_t o = 0; o < n; ++o) want[pos[o]].push_back(o);
        const int64_t nd = numelOf(p.operandShape(which));
        for (int64_t k = 0; k < parts; ++k) {
          const int64_t d0 = nd * k / parts, d1 = nd * (k + 1) / parts;
          p.forOperandRange(
              which, d0, d1,
              [&](int64_t o, int64_t a, int64_t b, int64_t len, int64_t x, int64_t z) {
                for (int64_t i = 0; i < len; ++i) {
                  const int64_t d = which == 0 ? a + i * x : b + i * z;
                  EXPECT_TRUE(d >= d0 && d < d1);
                  EXPECT_EQ(ia[o + i], a + i * x);
                  EXPECT_EQ(ib[o + i], b + i * z);
                  got[d].push_back(o + i);
                }
              });
        }
        EXPECT_TRUE(want == got) << "operand " << which << ", " << parts << " parts";
      }
    }
  }
}

// Add/Sub/Mul/Div (and Sum, Expand, PRelu, which share the broadcast
// kernels) on 1, 2 and 3 threads, forward and backward, bit for bit: same
// shapes and scalars (one row, cut over the threads), rows of a bias, a
// column per row (a layer norm's statistics), two-sided broadcasts and the
// exact (rank-reduced) weight gradients. An odd size over three grains of
// detail::kGrainCheap elements, so that three threads split it and their
// ranges fall inside rows.
TEST(Elementwise, SameBitsOnOneTwoAndThreeThreads) {
  const Shape x{9, 197, 911};  // 1615203 elements
  const std::pair<Shape, Shape> pairs[] = {{x, x},
                                           {x, {}},
                                           {{}, x},
                                           {x, {911}},
                                           {x, {9, 197, 1}},
                                           {x, {1, 197, 911}},
                                           {{9, 1, 911}, {1, 197, 1}},
                                           {{911}, x}};
  for (const char* type : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& [sa, sb] : pairs) {
      SCOPED_TRACE(std::string(type) + " " + shapeStr(sa) + " " + shapeStr(sb));
      const std::vector<Tensor> in = {test::randomTensor(sa, 51, -2.f, 2.f),
                                      test::randomTensor(sb, 52, 0.5f, 2.f)};
      test::expectSameBitsOnThreads(type, {}, in, {true, true});
      if (numelOf(sa) != numelOf(sb))  // the smaller operand as a rank-reduced weight
        test::expectSameBitsOnThreads(type, {}, in, {true, true}, 1,
                                      {numelOf(sa) < numelOf(sb), numelOf(sb) < numelOf(sa)});
    }
  }
  test::expectSameBitsOnThreads("Sum", {},
                                {test::randomTensor(x, 53), test::randomTensor({911}, 54),
                                 test::randomTensor({9, 197, 1}, 55)},
                                {true, true, true});
  test::expectSameBitsOnThreads(
      "Expand", {}, {test::randomTensor({9, 1, 911}, 56), Tensor::fromInts({3}, {9, 197, 911})},
      {true, false});
  test::expectSameBitsOnThreads(
      "PRelu", {}, {test::randomTensor({1, 1773, 911}, 57), test::randomTensor({911}, 58)},
      {true, true});
}

}  // namespace
}  // namespace slim
