// Tensor ops: Constant attribute forms, Shape start/end, ConstantOfShape,
// Cast, Gather (negative indices, int64 data, scatter-add gradient), Expand,
// Pad modes on hand-computed (numpy.pad) examples, and gradients.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

Tensor run1(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  return test::runForward(*op, in, 1, false)[0];
}
std::vector<int64_t> ints(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}
std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

TEST(TensorOps, ConstantForms) {
  ops::Attrs a;
  a.set("value", Tensor::fromVector({2}, {1.5f, 2.5f}));
  EXPECT_EQ(floats(run1("Constant", a, {})), (std::vector<float>{1.5f, 2.5f}));
  ops::Attrs f;
  f.set("value_float", 3.f);
  Tensor s = run1("Constant", f, {});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.f32()[0], 3.f);
  ops::Attrs is;
  is.set("value_ints", std::vector<int64_t>{4, -1});
  EXPECT_EQ(ints(run1("Constant", is, {})), (std::vector<int64_t>{4, -1}));
  ops::Attrs i1;
  i1.set("value_int", int64_t{7});
  EXPECT_EQ(ints(run1("Constant", i1, {})), (std::vector<int64_t>{7}));
  EXPECT_THROW(ops::OpRegistry::get().create("Constant", {}, "t"), ModelError);
  EXPECT_FALSE(ops::OpRegistry::get().create("Constant", f, "t")->differentiable());
}

TEST(TensorOps, ShapeConstantOfShapeCast) {
  Tensor x(Shape{2, 3, 4, 5});
  EXPECT_EQ(ints(run1("Shape", {}, {x})), (std::vector<int64_t>{2, 3, 4, 5}));
  ops::Attrs se;
  se.set("start", int64_t{1});
  se.set("end", int64_t{-1});
  EXPECT_EQ(ints(run1("Shape", se, {x})), (std::vector<int64_t>{3, 4}));
  se.set("start", int64_t{-10});
  EXPECT_EQ(ints(run1("Shape", se, {x})), (std::vector<int64_t>{2, 3, 4}));

  Tensor c = run1("ConstantOfShape", {}, {Tensor::fromInts({2}, {2, 3})});
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(floats(c), std::vector<float>(6, 0.f));
  ops::Attrs v;
  v.set("value", Tensor::fromInts({1}, {9}));
  EXPECT_EQ(ints(run1("ConstantOfShape", v, {Tensor::fromInts({1}, {3})})),
            (std::vector<int64_t>{9, 9, 9}));

  ops::Attrs to;
  to.set("to", int64_t{7});
  EXPECT_EQ(ints(run1("Cast", to, {Tensor::fromVector({3}, {1.7f, -2.2f, 0.f})})),
            (std::vector<int64_t>{1, -2, 0}));
  to.set("to", int64_t{1});
  EXPECT_EQ(floats(run1("Cast", to, {Tensor::fromInts({2}, {3, -4})})),
            (std::vector<float>{3.f, -4.f}));
  to.set("to", int64_t{9});
  Tensor b = run1("Cast", to, {Tensor::fromVector({3}, {0.f, 2.f, -1.f})});
  ASSERT_EQ(b.dtype(), DType::kU8);
  EXPECT_EQ(b.data<uint8_t>()[0], 0);
  EXPECT_EQ(b.data<uint8_t>()[1], 1);
  EXPECT_EQ(b.data<uint8_t>()[2], 1);
  ops::Attrs bad;
  bad.set("to", int64_t{11});
  EXPECT_THROW(ops::OpRegistry::get().create("Cast", bad, "t"), ModelError);
  ops::Attrs tf;
  tf.set("to", int64_t{1});
  test::gradCheck("Cast", tf, {test::randomTensor({3, 2}, 31)}, 1);
}

TEST(TensorOps, GatherAxesAndGradient) {
  Tensor x = test::randomTensor({3, 4}, 32);
  Tensor idx = Tensor::fromInts({2, 2}, {2, -1, 0, 2});
  Tensor y = run1("Gather", {}, {x, idx});
  ASSERT_EQ(y.shape(), (Shape{2, 2, 4}));
  const int rows[4] = {2, 2, 0, 2};
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(y.f32()[j * 4 + k], x.f32()[rows[j] * 4 + k]);
  ops::Attrs ax;
  ax.set("axis", int64_t{-1});
  Tensor z = run1("Gather", ax, {x, Tensor::fromInts({}, {3})});  // scalar index drops the axis
  ASSERT_EQ(z.shape(), (Shape{3}));
  for (int r = 0; r < 3; ++r) EXPECT_EQ(z.f32()[r], x.f32()[r * 4 + 3]);
  Tensor shp = run1("Gather", {}, {Tensor::fromInts({4}, {8, 3, 32, 32}), Tensor::fromInts({}, {1})});
  EXPECT_EQ(ints(shp), (std::vector<int64_t>{3}));
  EXPECT_THROW(run1("Gather", {}, {x, Tensor::fromInts({1}, {3})}), Error);
  test::gradCheck("Gather", {}, {x, idx}, 1);  // repeated indices accumulate
  ax.set("axis", int64_t{1});
  test::gradCheck("Gather", ax, {test::randomTensor({2, 3, 2}, 33), Tensor::fromInts({3}, {0, 0, -1})}, 1);
}

TEST(TensorOps, Expand) {
  Tensor x = test::randomTensor({3, 1}, 34);
  Tensor y = run1("Expand", {}, {x, Tensor::fromInts({3}, {2, 1, 4})});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 4; ++w) ASSERT_EQ(y.f32()[(n * 3 + c) * 4 + w], x.f32()[c]);
  Tensor yi = run1("Expand", {}, {Tensor::fromInts({1}, {5}), Tensor::fromInts({1}, {3})});
  EXPECT_EQ(ints(yi), (std::vector<int64_t>{5, 5, 5}));
  test::gradCheck("Expand", {}, {x, Tensor::fromInts({3}, {2, 1, 4})}, 1);
}

TEST(TensorOps, PadModes) {
  Tensor x = Tensor::fromVector({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor pads = Tensor::fromInts({4}, {0, 2, 0, 1});  // begin d0, d1, end d0, d1
  auto pad = [&](const std::string& mode, std::vector<Tensor> in) {
    ops::Attrs a;
    a.set("mode", mode);
    return run1("Pad", a, std::move(in));
  };
  Tensor c = pad("constant", {x, pads, Tensor::scalar(-1.f)});
  ASSERT_EQ(c.shape(), (Shape{2, 6}));
  EXPECT_EQ(floats(c), (std::vector<float>{-1, -1, 1, 2, 3, -1, -1, -1, 4, 5, 6, -1}));
  EXPECT_EQ(floats(pad("reflect", {x, pads})),
            (std::vector<float>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}));
  EXPECT_EQ(floats(pad("edge", {x, pads})),
            (std::vector<float>{1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6}));
  EXPECT_EQ(floats(pad("reflect", {x, Tensor::fromInts({4}, {1, 0, 1, 0})})),
            (std::vector<float>{4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3}));
  EXPECT_EQ(floats(pad("constant", {x, Tensor::fromInts({4}, {0, -1, 0, 0})})),
            (std::vector<float>{2, 3, 5, 6}));
  // Opset < 11: pads and value as attributes; opset 18: axes input.
  ops::Attrs old;
  old.set("pads", std::vector<int64_t>{1, 0, 0, 0});
  old.set("value", 7.f);
  EXPECT_EQ(floats(run1("Pad", old, {x})), (std::vector<float>{7, 7, 7, 1, 2, 3, 4, 5, 6}));
  Tensor ax = pad("constant", {x, Tensor::fromInts({2}, {1, 1}), Tensor(), Tensor::fromInts({1}, {-1})});
  EXPECT_EQ(floats(ax), (std::vector<float>{0, 1, 2, 3, 0, 0, 4, 5, 6, 0}));

  Tensor img = test::randomTensor({1, 2, 3, 4}, 35);
  Tensor p4 = Tensor::fromInts({8}, {0, 0, 1, 2, 0, 0, 2, 1});
  for (const char* mode : {"constant", "reflect", "edge"}) {
    SCOPED_TRACE(mode);
    ops::Attrs a;
    a.set("mode", std::string(mode));
    test::gradCheck("Pad", a, {img, p4}, 1);
  }
}

}  // namespace
}  // namespace slim
