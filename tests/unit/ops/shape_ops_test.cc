// Shape plumbing: Concat/Flatten/Reshape/Transpose/Squeeze/Unsqueeze/Identity
// output shapes and values against naive loops, attribute vs input forms,
// Dropout in both modes, finite-difference gradients, and Transpose on one,
// two and three threads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

Tensor run1(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  return test::runForward(*op, in, 1, false)[0];
}

ops::Attrs intAttr(const std::string& k, int64_t v) {
  ops::Attrs a;
  a.set(k, v);
  return a;
}
ops::Attrs intsAttr(const std::string& k, std::vector<int64_t> v) {
  ops::Attrs a;
  a.set(k, std::move(v));
  return a;
}

TEST(ShapeOps, ConcatNegativeAxisAndInt64) {
  Tensor a = test::randomTensor({2, 3, 2}, 1), b = test::randomTensor({2, 3, 1}, 2);
  Tensor y = run1("Concat", intAttr("axis", -1), {a, b});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3}));
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(y.f32()[r * 3 + 0], a.f32()[r * 2 + 0]);
    EXPECT_EQ(y.f32()[r * 3 + 1], a.f32()[r * 2 + 1]);
    EXPECT_EQ(y.f32()[r * 3 + 2], b.f32()[r]);
  }
  Tensor s = run1("Concat", intAttr("axis", 0),
                  {Tensor::fromInts({1}, {-1}), Tensor::fromInts({2}, {3, 4})});
  ASSERT_EQ(s.dtype(), DType::kI64);
  EXPECT_EQ(std::vector<int64_t>(s.data<int64_t>(), s.data<int64_t>() + 3),
            (std::vector<int64_t>{-1, 3, 4}));
  EXPECT_THROW(run1("Concat", intAttr("axis", 0), {a, test::randomTensor({2, 2, 2}, 3)}), Error);
  test::gradCheck("Concat", intAttr("axis", 1), {a, test::randomTensor({2, 4, 2}, 4)}, 1);
  test::gradCheck("Concat", intAttr("axis", -1), {a, b, a.clone()}, 1);  // clone: no aliasing
}

TEST(ShapeOps, FlattenReshapeSqueezeUnsqueeze) {
  Tensor x = test::randomTensor({2, 3, 4}, 5);
  EXPECT_EQ(run1("Flatten", {}, {x}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Flatten", intAttr("axis", 0), {x}).shape(), (Shape{1, 24}));
  EXPECT_EQ(run1("Flatten", intAttr("axis", -1), {x}).shape(), (Shape{6, 4}));
  EXPECT_EQ(run1("Flatten", intAttr("axis", 3), {x}).shape(), (Shape{24, 1}));
  EXPECT_EQ(run1("Reshape", {}, {x, Tensor::fromInts({2}, {0, -1})}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Reshape", {}, {x, Tensor::fromInts({3}, {-1, 0, 2})}).shape(), (Shape{4, 3, 2}));
  EXPECT_THROW(run1("Reshape", intAttr("allowzero", 1), {x, Tensor::fromInts({2}, {0, -1})}), Error);
  EXPECT_THROW(run1("Reshape", {}, {x, Tensor::fromInts({2}, {5, -1})}), Error);
  Tensor y = run1("Reshape", {}, {x, Tensor::fromInts({1}, {24})});
  for (int i = 0; i < 24; ++i) EXPECT_EQ(y.f32()[i], x.f32()[i]);

  Tensor u = test::randomTensor({3, 1, 4, 1}, 6);
  EXPECT_EQ(run1("Squeeze", {}, {u}).shape(), (Shape{3, 4}));
  EXPECT_EQ(run1("Squeeze", intsAttr("axes", {-1}), {u}).shape(), (Shape{3, 1, 4}));
  EXPECT_EQ(run1("Squeeze", {}, {u, Tensor::fromInts({1}, {1})}).shape(), (Shape{3, 4, 1}));
  EXPECT_THROW(run1("Squeeze", intsAttr("axes", {0}), {u}), Error);
  EXPECT_EQ(run1("Unsqueeze", intsAttr("axes", {0, -1}), {x}).shape(), (Shape{1, 2, 3, 4, 1}));
  EXPECT_EQ(run1("Unsqueeze", {}, {x, Tensor::fromInts({2}, {1, 3})}).shape(),
            (Shape{2, 1, 3, 1, 4}));
  EXPECT_EQ(run1("Identity", {}, {x}).shape(), x.shape());

  test::gradCheck("Flatten", {}, {x}, 1);
  test::gradCheck("Reshape", {}, {x, Tensor::fromInts({2}, {4, -1})}, 1);
  test::gradCheck("Squeeze", {}, {u}, 1);
  test::gradCheck("Unsqueeze", intsAttr("axes", {1}), {x}, 1);
  test::gradCheck("Identity", {}, {x}, 1);
}

TEST(ShapeOps, TransposeMatchesNaive) {
  Tensor x = test::randomTensor({2, 3, 4, 5}, 7);
  const std::vector<int64_t> perm = {0, 2, 3, 1};
  Tensor y = run1("Transpose", intsAttr("perm", perm), {x});
  ASSERT_EQ(y.shape(), (Shape{2, 4, 5, 3}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int w = 0; w < 5; ++w)
          ASSERT_EQ(y.f32()[((n * 4 + h) * 5 + w) * 3 + c], x.f32()[((n * 3 + c) * 4 + h) * 5 + w]);
  Tensor m = Tensor::fromInts({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor t = run1("Transpose", {}, {m});  // default: reverse
  ASSERT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + 6),
            (std::vector<int64_t>{1, 4, 2, 5, 3, 6}));
  test::gradCheck("Transpose", intsAttr("perm", perm), {x}, 1);
  test::gradCheck("Transpose", intsAttr("perm", {2, 0, 1}), {test::randomTensor({3, 2, 4}, 8)}, 1);
}

// Permutations that move the last axis elsewhere run as blocked plane
// transposes when both plane sides reach 8 (attention's [T, N*H, D] ->
// [N*H, D, T]), including edges that are not multiples of 8; every element
// lands where the index arithmetic says.
TEST(ShapeOps, TransposeOfTheLastAxisMatchesNaive) {
  struct Case {
    Shape s;
    std::vector<int64_t> perm;
  };
  for (const Case& c :
       {Case{{19, 6, 12}, {1, 2, 0}}, Case{{9, 4, 17}, {2, 0, 1}}, Case{{3, 10, 13}, {0, 2, 1}},
        Case{{2, 9, 3, 11}, {0, 3, 1, 2}}, Case{{2, 9, 3, 11}, {3, 2, 1, 0}}}) {
    const Tensor x = test::randomTensor(c.s, 9);
    const Tensor y = run1("Transpose", intsAttr("perm", c.perm), {x});
    const int r = static_cast<int>(c.s.size());
    std::vector<int64_t> in_st(r, 1);
    for (int d = r - 2; d >= 0; --d) in_st[d] = in_st[d + 1] * c.s[d + 1];
    std::vector<int64_t> idx(r, 0);  // output index, last fastest
    for (int64_t o = 0; o < y.numel(); ++o) {
      int64_t in = 0;
      for (int d = 0; d < r; ++d) in += idx[d] * in_st[c.perm[d]];
      ASSERT_EQ(y.f32()[o], x.f32()[in]) << shapeStr(c.s) << " element " << o;
      for (int d = r - 1; d >= 0 && ++idx[d] == y.shape()[d]; --d) idx[d] = 0;
    }
  }
}

TEST(ShapeOps, DropoutInferenceIsIdentity) {
  Tensor x = test::randomTensor({4, 8}, 9);
  auto op = ops::OpRegistry::get().create("Dropout", {}, "t");
  std::vector<Tensor> in = {x};
  auto out = test::runForward(*op, in, 2, false);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[0].f32()[i], x.f32()[i]);
  EXPECT_EQ(out[1].dtype(), DType::kU8);
  test::GradCheckOptions o;
  o.training = false;
  test::gradCheck("Dropout", {}, {x}, 1, o);
}

TEST(ShapeOps, DropoutTraining) {
  const int64_t n = 20000;
  Tensor x(Shape{n});
  x.fill(2.f);
  auto op = ops::OpRegistry::get().create("Dropout", {}, "t");
  Rng rng(42);
  ops::RunContext ctx;
  ctx.training = true;
  Tensor r = Tensor::scalar(0.25f);  // opset 12+: ratio input overrides the 0.5 default
  Tensor y, mask;
  EXPECT_THROW(op->forward({&x, &r}, {&y, &mask}, ctx), Error);  // no Rng
  ctx.rng = &rng;
  op->forward({&x, &r}, {&y, &mask}, ctx);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = y.f32()[i];
    ASSERT_TRUE(v == 0.f || std::fabs(v - 2.f / 0.75f) < 1e-5f) << v;
    ASSERT_EQ(mask.data<uint8_t>()[i], v != 0.f ? 1 : 0);
    kept += v != 0.f;
  }
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.75, 0.02);
  Tensor g(Shape{n}), dx;
  g.fill(1.f);
  op->backward({&x, &r}, {&y, &mask}, {&g, nullptr}, {&dx, nullptr}, ctx);
  for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(dx.f32()[i], y.f32()[i] / 2.f);
}

// Transpose on 1, 2 and 3 threads, forward and backward, bit for bit (output
// rows over the threads): ViT's head splits and merges, a last axis moved
// (strided reads), the default reversed order, and int64 and uint8 data.
// Odd sizes over three grains (detail::kGrainCheap elements, a quarter of
// that for strided reads).
TEST(ShapeOps, TransposeSameBitsOnOneTwoAndThreeThreads) {
  const std::pair<Shape, std::vector<int64_t>> cases[] = {{{397, 61, 67}, {1, 0, 2}},
                                                          {{7, 197, 1151}, {1, 0, 2}},
                                                          {{5, 197, 6, 67}, {0, 2, 3, 1}},
                                                          {{7, 197, 19, 61}, {0, 2, 1, 3}},
                                                          {{1031, 1543}, {}}};
  for (const auto& [shape, perm] : cases) {
    SCOPED_TRACE(shapeStr(shape));
    ops::Attrs a;
    if (!perm.empty()) a.set("perm", perm);
    test::expectSameBitsOnThreads("Transpose", a, {test::randomTensor(shape, 81)}, {true});
  }
  std::vector<int64_t> v(7 * 197 * 1151);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 2654435761u);
  test::expectSameBitsOnThreads("Transpose", intsAttr("perm", {1, 0, 2}),
                                {Tensor::fromInts({7, 197, 1151}, v)}, {false});
  Tensor bytes({9, 197, 911}, DType::kU8);
  for (int64_t i = 0; i < bytes.numel(); ++i)
    bytes.data<uint8_t>()[i] = static_cast<uint8_t>(i * 37);
  test::expectSameBitsOnThreads("Transpose", intsAttr("perm", {1, 2, 0}), {bytes}, {false});
}

}  // namespace
}  // namespace slim
