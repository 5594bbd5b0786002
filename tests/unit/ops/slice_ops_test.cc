// Slice/Split/Tile/Range and the comparison/selection ops: values against
// naive loops (negative indices and steps, clamping, broadcasting, int64 and
// bool tensors), finite-difference gradients, and Slice/Split/Tile on one,
// two and three threads.
#include <gtest/gtest.h>

#include <climits>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

std::vector<Tensor> run(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in,
                        size_t n_out = 1) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  return test::runForward(*op, in, n_out, false);
}
Tensor run1(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in) {
  return run(type, a, std::move(in))[0];
}
Tensor ints(std::vector<int64_t> v) {
  return Tensor::fromInts({static_cast<int64_t>(v.size())}, v);
}
Tensor bools(Shape s, std::vector<uint8_t> v) {
  Tensor t(std::move(s), DType::kU8);
  for (size_t i = 0; i < v.size(); ++i) t.data<uint8_t>()[i] = v[i];
  return t;
}
template <class T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

// The indices a (start, end, step) slice of a length-n axis reads (numpy).
std::vector<int64_t> sliceIdx(int64_t n, int64_t b, int64_t e, int64_t s) {
  std::vector<int64_t> v;
  if (b < 0) b += n;
  if (e < 0) e += n;
  if (s > 0) {
    for (int64_t i = std::max<int64_t>(b, 0); i < std::min(e, n); i += s) v.push_back(i);
  } else {
    for (int64_t i = std::min(b, n - 1); i > std::max<int64_t>(e, -1); i += s) v.push_back(i);
  }
  return v;
}

TEST(SliceOps, SliceMatchesNaive) {
  Tensor x = test::randomTensor({3, 4, 5}, 1);
  struct Case {
    std::vector<int64_t> starts, ends, axes, steps;
  };
  const Case cases[] = {
      {{1, 0}, {3, -1}, {1, 2}, {1, 2}},
      {{-1}, {INT64_MIN}, {-1}, {-1}},          // reverse the last axis
      {{-2, 10}, {-100, -10}, {0, 2}, {-1, -2}},  // clamping with negative steps
      {{0, 1, 1}, {INT64_MAX, 100, 4}, {0, 1, 2}, {2, 1, 3}},
      {{3}, {1}, {1}, {1}},  // empty
      {{-5, 0}, {INT64_MAX, INT64_MAX}, {2, 0}, {INT64_MAX, 2}},  // huge step: one element
  };
  for (const Case& c : cases) {
    Tensor y = run1("Slice", {}, {x, ints(c.starts), ints(c.ends), ints(c.axes), ints(c.steps)});
    std::vector<std::vector<int64_t>> idx;
    for (int d = 0; d < 3; ++d) {
      idx.push_back(sliceIdx(x.shape()[d], 0, INT64_MAX, 1));
      for (size_t k = 0; k < c.axes.size(); ++k)
        if ((c.axes[k] + 3) % 3 == d)
          idx[d] = sliceIdx(x.shape()[d], c.starts[k], c.ends[k], c.steps[k]);
    }
    Shape want{static_cast<int64_t>(idx[0].size()), static_cast<int64_t>(idx[1].size()),
               static_cast<int64_t>(idx[2].size())};
    ASSERT_EQ(y.shape(), want);
    int64_t o = 0;
    for (int64_t i : idx[0])
      for (int64_t j : idx[1])
        for (int64_t k : idx[2]) EXPECT_EQ(y.f32()[o++], x.f32()[(i * 4 + j) * 5 + k]);
    if (y.numel() > 0)
      test::gradCheck("Slice", {},
                      {x, ints(c.starts), ints(c.ends), ints(c.axes), ints(c.steps)}, 1);
  }
}

TEST(SliceOps, SliceDefaultsAttributesAndInt64) {
  Tensor x = Tensor::fromInts({2, 3}, {0, 1, 2, 3, 4, 5});
  // No axes/steps: the first len(starts) axes, step 1.
  Tensor y = run1("Slice", {}, {x, ints({0, -2}), ints({1, 3})});
  ASSERT_EQ(y.dtype(), DType::kI64);
  EXPECT_EQ(y.shape(), (Shape{1, 2}));
  EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{1, 2}));
  ops::Attrs a;  // opset 1 form
  a.set("starts", std::vector<int64_t>{1});
  a.set("ends", std::vector<int64_t>{2});
  a.set("axes", std::vector<int64_t>{0});
  EXPECT_EQ(values<int64_t>(run1("Slice", a, {x})), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_THROW(run1("Slice", {}, {x, ints({0}), ints({1}), ints({0}), ints({0})}), Error);
  EXPECT_THROW(run1("Slice", {}, {x, ints({0}), ints({1}), ints({2})}), Error);
  EXPECT_THROW(run1("Slice", {}, {x, ints({0, 0}), ints({1, 1}), ints({0, -2})}), Error);
}

TEST(SliceOps, SplitForms) {
  Tensor x = test::randomTensor({2, 6, 3}, 2);
  ops::Attrs ax;
  ax.set("axis", int64_t{1});
  auto eq = run("Split", ax, {x}, 3);  // equal parts
  for (int j = 0; j < 3; ++j) {
    ASSERT_EQ(eq[j].shape(), (Shape{2, 2, 3}));
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 2; ++c)
        for (int w = 0; w < 3; ++w)
          EXPECT_EQ(eq[j].f32()[(n * 2 + c) * 3 + w], x.f32()[(n * 6 + 2 * j + c) * 3 + w]);
  }
  auto var = run("Split", ax, {x, ints({1, 0, 5})}, 3);  // opset 13 input
  EXPECT_EQ(var[0].shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(var[1].shape(), (Shape{2, 0, 3}));
  EXPECT_EQ(var[2].shape(), (Shape{2, 5, 3}));
  EXPECT_EQ(var[2].f32()[0], x.f32()[3]);
  ops::Attrs attr = ax;  // opset 2-12 attribute, negative axis
  attr.set("axis", int64_t{-2});
  attr.set("split", std::vector<int64_t>{4, 2});
  EXPECT_EQ(run("Split", attr, {x}, 2)[1].shape(), (Shape{2, 2, 3}));
  ops::Attrs num = ax;  // opset 18 num_outputs: the last chunk is smaller
  num.set("num_outputs", int64_t{4});
  auto uneven = run("Split", num, {x}, 4);
  EXPECT_EQ(uneven[0].shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(uneven[3].shape(), (Shape{2, 0, 3}));
  EXPECT_THROW(run("Split", ax, {x, ints({1, 2})}, 2), Error);  // sizes add up to 3, not 6
  test::gradCheck("Split", ax, {x}, 3);
  test::gradCheck("Split", ax, {x, ints({1, 0, 5})}, 3);
}

TEST(SliceOps, TileAndRange) {
  Tensor x = test::randomTensor({2, 1, 3}, 3);
  Tensor y = run1("Tile", {}, {x, ints({2, 3, 1})});
  ASSERT_EQ(y.shape(), (Shape{4, 3, 3}));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(y.f32()[(i * 3 + j) * 3 + k], x.f32()[(i % 2) * 3 + k]);
  EXPECT_EQ(run1("Tile", {}, {x, ints({1, 0, 1})}).numel(), 0);
  test::gradCheck("Tile", {}, {x, ints({2, 3, 2})}, 1);
  test::gradCheck("Tile", {}, {x, ints({1, 1, 1})}, 1);

  auto scalar = [](int64_t v) { return Tensor::fromInts({}, {v}); };
  EXPECT_EQ(values<int64_t>(run1("Range", {}, {scalar(10), scalar(1), scalar(-3)})),
            (std::vector<int64_t>{10, 7, 4}));
  EXPECT_EQ(run1("Range", {}, {scalar(1), scalar(10), scalar(-3)}).numel(), 0);
  Tensor f = run1("Range", {}, {Tensor::scalar(0.5f), Tensor::scalar(2.f), Tensor::scalar(0.5f)});
  EXPECT_EQ(values<float>(f), (std::vector<float>{0.5f, 1.f, 1.5f}));
  EXPECT_THROW(run1("Range", {}, {scalar(0), scalar(3), scalar(0)}), Error);
}

TEST(LogicOps, ComparisonsBroadcast) {
  Tensor a = Tensor::fromVector({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::fromVector({3}, {1, 5, 4});
  const std::pair<const char*, std::vector<uint8_t>> want[] = {
      {"Equal", {1, 0, 0, 0, 1, 0}},       {"Less", {0, 1, 1, 0, 0, 0}},
      {"Greater", {0, 0, 0, 1, 0, 1}},     {"LessOrEqual", {1, 1, 1, 0, 1, 0}},
      {"GreaterOrEqual", {1, 0, 0, 1, 1, 1}}};
  for (const auto& [op, v] : want) {
    Tensor y = run1(op, {}, {a, b});
    ASSERT_EQ(y.dtype(), DType::kU8) << op;
    EXPECT_EQ(y.shape(), (Shape{2, 3})) << op;
    EXPECT_EQ(values<uint8_t>(y), v) << op;
  }
  Tensor s = run1("Equal", {}, {Tensor::fromInts({2, 1}, {3, 7}), Tensor::fromInts({}, {7})});
  EXPECT_EQ(values<uint8_t>(s), (std::vector<uint8_t>{0, 1}));
  EXPECT_THROW(run1("Less", {}, {a, Tensor::fromInts({1}, {1})}), Error);  // dtypes differ

  Tensor p = bools({2, 2}, {0, 1, 0, 1}), q = bools({2, 1}, {0, 1});
  EXPECT_EQ(values<uint8_t>(run1("And", {}, {p, q})), (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(values<uint8_t>(run1("Or", {}, {p, q})), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(values<uint8_t>(run1("Xor", {}, {p, q})), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(values<uint8_t>(run1("Not", {}, {p})), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_THROW(run1("Not", {}, {a}), Error);
}

TEST(LogicOps, WhereBroadcastAndGradient) {
  Tensor c = bools({2, 1}, {1, 0});
  Tensor x = test::randomTensor({1, 3}, 4), y = test::randomTensor({2, 3}, 5);
  Tensor w = run1("Where", {}, {c, x, y});
  ASSERT_EQ(w.shape(), (Shape{2, 3}));
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(w.f32()[j], x.f32()[j]);
    EXPECT_EQ(w.f32()[3 + j], y.f32()[3 + j]);
  }
  Tensor wi = run1("Where", {}, {bools({3}, {0, 1, 0}), Tensor::fromInts({}, {-1}),
                                 Tensor::fromInts({3}, {4, 5, 6})});
  EXPECT_EQ(values<int64_t>(wi), (std::vector<int64_t>{4, -1, 6}));
  test::gradCheck("Where", {}, {c, x, y}, 1);
  test::gradCheck("Where", {}, {bools({2, 3}, {1, 0, 0, 1, 1, 0}), x, y}, 1);
}

TEST(LogicOps, MinMaxVariadicTiesAndGradient) {
  Tensor a = Tensor::fromVector({2, 3}, {0.1f, -0.7f, 0.4f, 0.9f, -0.2f, 0.5f});
  Tensor b = Tensor::fromVector({3}, {0.3f, -0.45f, 0.15f});
  Tensor c = Tensor::scalar(0.2f);
  Tensor mx = run1("Max", {}, {a, b, c}), mn = run1("Min", {}, {a, b, c});
  ASSERT_EQ(mx.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) {
    const float v[] = {a.f32()[i], b.f32()[i % 3], 0.2f};
    EXPECT_EQ(mx.f32()[i], std::max({v[0], v[1], v[2]}));
    EXPECT_EQ(mn.f32()[i], std::min({v[0], v[1], v[2]}));
  }
  EXPECT_EQ(values<int64_t>(run1("Max", {}, {Tensor::fromInts({2}, {3, -5}),
                                             Tensor::fromInts({1}, {0})})),
            (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(run1("Min", {}, {a}).f32()[1], -0.7f);
  test::gradCheck("Max", {}, {a, b, c}, 1);
  test::gradCheck("Min", {}, {a, b, c}, 1);
  // Ties: the gradient goes to the first input holding the value.
  auto op = ops::OpRegistry::get().create("Max", {}, "t");
  std::vector<Tensor> in = {Tensor::fromVector({2}, {1, 2}), Tensor::fromVector({2}, {1, 2})};
  std::vector<Tensor> outs(1), grads(2);
  std::vector<Tensor*> ip = {&in[0], &in[1]}, op_out = {&outs[0]}, dp = {&grads[0], &grads[1]};
  ops::RunContext ctx;
  op->forward(ip, op_out, ctx);
  Tensor g = Tensor::fromVector({2}, {1, 1});
  op->backward(ip, op_out, {&g}, dp, ctx);
  EXPECT_EQ(values<float>(grads[0]), (std::vector<float>{1, 1}));
  EXPECT_EQ(values<float>(grads[1]), (std::vector<float>{0, 0}));
}

// Slice, Split and Tile on 1, 2 and 3 threads, forward and backward, bit for
// bit: output element ranges over the threads for the copies and for the
// injective scatters (Slice, Split); Tile's repeated reads add on one
// thread. Odd sizes over three grains of detail::kGrainCheap elements;
// negative steps; int64 data.
TEST(SliceOps, SameBitsOnOneTwoAndThreeThreads) {
  const Tensor x = test::randomTensor({9, 197, 2689}, 91);
  auto slice = [&](const Tensor& t, std::vector<int64_t> b, std::vector<int64_t> e,
                   std::vector<int64_t> axes, std::vector<int64_t> steps) {
    SCOPED_TRACE("Slice of " + shapeStr(t.shape()));
    test::expectSameBitsOnThreads("Slice", {}, {t, ints(b), ints(e), ints(axes), ints(steps)},
                                  {true, false, false, false, false});
  };
  slice(x, {897}, {1793}, {2}, {1});                     // ViT's q/k/v columns
  slice(x, {-1, -1}, {-1000, -3000}, {1, 2}, {-1, -2});  // negative steps over whole axes
  slice(test::randomTensor({3, 8, 6, 197, 173}, 92), {1}, {2}, {0}, {1});  // one long row
  std::vector<int64_t> v(9 * 197 * 1153);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
  test::expectSameBitsOnThreads(
      "Slice", {},
      {Tensor::fromInts({9, 197, 1153}, v), ints({1}), ints({1152}), ints({2}), ints({1})},
      {false, false, false, false, false});
  ops::Attrs split;
  split.set("axis", int64_t{2});
  test::expectSameBitsOnThreads("Split", split, {x, ints({897, 896, 896})}, {true, false}, 3);
  test::expectSameBitsOnThreads("Tile", {}, {test::randomTensor({197, 2003}, 93), ints({4, 1})},
                                {true, false});
  test::expectSameBitsOnThreads("Tile", {}, {test::randomTensor({1, 1543}, 94), ints({1021, 1})},
                                {true, false});
}

}  // namespace
}  // namespace slim
