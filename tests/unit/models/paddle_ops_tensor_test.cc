// Paddle importer, op by op: elementwise ops with Paddle's axis broadcasting,
// mul / matmul / matmul_v2, scale, softmax, concat, flatten*, reshape2,
// transpose2, dropout and fill_constant, against naive references.
#include <cmath>

#include "tests/unit/models/paddle_test_util.h"

namespace slim::test {
namespace {

float at4(const Tensor& t, int64_t a, int64_t b, int64_t c, int64_t d) {
  return t.f32()[((a * t.dim(1) + b) * t.dim(2) + c) * t.dim(3) + d];
}

TEST(PaddleOpsTensor, ElementwiseAxisBroadcasting) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 3, 4, 5});
  b.feed("yact", {3, 4});
  Tensor bc = randomTensor({3}, 1), bw = randomTensor({5}, 2, 0.5f, 2.f);
  b.param("bias_c", bc);
  b.param("scale_w", bw);
  const char* types[] = {"elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div"};
  for (int k = 0; k < 4; ++k) {
    std::string o1 = "c_" + std::to_string(k), o2 = "w_" + std::to_string(k),
                o3 = "a_" + std::to_string(k);
    for (auto& o : {o1, o2, o3}) b.var(o, {-1, 3, 4, 5});
    // bias_c is shared by 4 ops, so it goes through a Reshape node.
    b.op(types[k]).in("X", {"x"}).in("Y", {"bias_c"}).out("Out", {o1}).i("axis", 1);
    b.op(types[k]).in("X", {"x"}).in("Y", {"scale_w"}).out("Out", {o2}).i("axis", -1);
    b.op(types[k]).in("X", {"x"}).in("Y", {"yact"}).out("Out", {o3}).i("axis", 1);
    b.fetch(o1); b.fetch(o2); b.fetch(o3);
  }
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, 3, 4, 5}, 3), ya = randomTensor({3, 4}, 4, 0.5f, 2.f);
  auto out = runForward(g, {{"x", x}, {"yact", ya}});
  auto f = [](int k, float a, float c) {
    return k == 0 ? a + c : k == 1 ? a - c : k == 2 ? a * c : a / c;
  };
  for (int k = 0; k < 4; ++k) {
    Tensor w1({2, 3, 4, 5}), w2({2, 3, 4, 5}), w3({2, 3, 4, 5});
    for (int64_t n = 0; n < 2; ++n) for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 4; ++h) for (int64_t w = 0; w < 5; ++w) {
        int64_t i = ((n * 3 + c) * 4 + h) * 5 + w;
        w1.f32()[i] = f(k, at4(x, n, c, h, w), bc.f32()[c]);
        w2.f32()[i] = f(k, at4(x, n, c, h, w), bw.f32()[w]);
        w3.f32()[i] = f(k, at4(x, n, c, h, w), ya.f32()[c * 4 + h]);
      }
    expectClose(out.at("c_" + std::to_string(k)), w1, 1e-5f, std::string(types[k]) + " axis=1 param");
    expectClose(out.at("w_" + std::to_string(k)), w2, 1e-5f, std::string(types[k]) + " axis=-1");
    expectClose(out.at("a_" + std::to_string(k)), w3, 1e-5f, std::string(types[k]) + " axis=1 act");
  }
  EXPECT_EQ(shapeStr(g.initializers.at("bias_c").shape()), "[3]");  // shared: not reshaped
}

TEST(PaddleOpsTensor, ElementwiseSingleUseParamReshapedInPlace) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 2, 3, 3});
  Tensor bias = randomTensor({2}, 5);
  b.param("conv_b", bias);
  b.var("y", {-1, 2, 3, 3});
  b.op("elementwise_add").in("X", {"x"}).in("Y", {"conv_b"}).out("Out", {"y"}).i("axis", 1);
  b.fetch("y");
  auto g = importBuilt(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(shapeStr(g.initializers.at("conv_b").shape()), "[2, 1, 1]");
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({1, 2, 3, 3}, 6), want({1, 2, 3, 3});
  for (int64_t i = 0; i < 18; ++i) want.f32()[i] = x.f32()[i] + bias.f32()[i / 9];
  expectClose(runForward(g, {{"x", x}}).at("y"), want, 1e-6f, "add");
}

// out[i][j] = sum_k a[i][k] * b[k][j] for row-major a (I, K), b (K, J).
Tensor naiveMatmul(const Tensor& a, const Tensor& bm, int64_t I, int64_t K, int64_t J,
                   bool ta = false, bool tb = false, float alpha = 1.f) {
  Tensor out({I, J});
  for (int64_t i = 0; i < I; ++i)
    for (int64_t j = 0; j < J; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (ta ? a.f32()[k * I + i] : a.f32()[i * K + k]) *
               (tb ? bm.f32()[j * K + k] : bm.f32()[k * J + j]);
      out.f32()[i * J + j] = static_cast<float>(alpha * acc);
    }
  return out;
}

TEST(PaddleOpsTensor, MulFlattensX) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 3, 2, 2});
  b.feed("x3", {-1, 3, 4});
  Tensor w = randomTensor({12, 5}, 7), w2 = randomTensor({4, 6}, 8);
  b.param("fc_w", w);
  b.param("fc_w2", w2);
  b.var("y", {-1, 5});
  b.var("y3", {-1, 3, 6});
  b.op("mul").in("X", {"x"}).in("Y", {"fc_w"}).out("Out", {"y"})
      .i("x_num_col_dims", 1).i("y_num_col_dims", 1);
  b.op("mul").in("X", {"x3"}).in("Y", {"fc_w2"}).out("Out", {"y3"}).i("x_num_col_dims", 2);
  b.fetch("y");
  b.fetch("y3");
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, 3, 2, 2}, 9), x3 = randomTensor({2, 3, 4}, 10);
  auto out = runForward(g, {{"x", x}, {"x3", x3}});
  expectClose(out.at("y"), naiveMatmul(x, w, 2, 12, 5), 1e-5f, "mul x_num_col_dims=1");
  expectClose(out.at("y3"), naiveMatmul(x3, w2, 6, 4, 6).reshaped({2, 3, 6}), 1e-5f,
              "mul x_num_col_dims=2");
}

TEST(PaddleOpsTensor, MatmulTransposesAndAlpha) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 4});     // [4 ... ] used transposed: x^T is [4 x N]... keep 2-D
  b.feed("xt", {4, -1});
  Tensor w = randomTensor({5, 4}, 11);
  b.param("w", w);
  for (auto n : {"m1", "m2"}) b.var(n, {-1, 5});
  // matmul: (xt^T) [N,4] @ (w^T) [4,5], alpha 0.5
  b.op("matmul").in("X", {"xt"}).in("Y", {"w"}).out("Out", {"m1"})
      .b("transpose_X", true).b("transpose_Y", true).f("alpha", 0.5f);
  b.op("matmul_v2").in("X", {"x"}).in("Y", {"w"}).out("Out", {"m2"})
      .b("trans_x", false).b("trans_y", true);
  b.fetch("m1");
  b.fetch("m2");
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({3, 4}, 12), xt = randomTensor({4, 3}, 13);
  auto out = runForward(g, {{"x", x}, {"xt", xt}});
  expectClose(out.at("m1"), naiveMatmul(xt, w, 3, 4, 5, true, true, 0.5f), 1e-5f, "matmul");
  expectClose(out.at("m2"), naiveMatmul(x, w, 3, 4, 5, false, true), 1e-5f, "matmul_v2");
}

TEST(PaddleOpsTensor, ScaleSoftmaxConcatDropoutFill) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 3, 4});
  for (auto n : {"s_after", "s_before", "s_ident", "sm", "cat", "d_down", "d_up", "plus"})
    b.var(n, {-1, -1, -1});
  b.op("scale").in("X", {"x"}).out("Out", {"s_after"}).f("scale", 2.f).f("bias", 0.5f)
      .b("bias_after_scale", true);
  b.op("scale").in("X", {"x"}).out("Out", {"s_before"}).f("scale", 2.f).f("bias", 0.5f)
      .b("bias_after_scale", false);
  b.op("scale").in("ScaleTensor", {}).in("X", {"x"}).out("Out", {"s_ident"}).f("scale", 1.f);
  b.op("softmax").in("X", {"x"}).out("Out", {"sm"}).i("axis", 1);
  b.op("concat").in("X", {"x", "s_after"}).out("Out", {"cat"}).i("axis", 1);
  b.op("dropout").in("X", {"x"}).out("Out", {"d_down"}).out("Mask", {"mask0"})
      .f("dropout_prob", 0.3f).b("is_test", true).s("dropout_implementation", "downgrade_in_infer");
  b.op("dropout").in("X", {"x"}).out("Out", {"d_up"}).f("dropout_prob", 0.3f)
      .s("dropout_implementation", "upscale_in_train");
  b.var("filled", {1});
  b.op("fill_constant").out("Out", {"filled"}).ints("shape", {1}).f("value", 2.5f).i("dtype", 5);
  b.op("elementwise_add").in("X", {"x"}).in("Y", {"filled"}).out("Out", {"plus"}).i("axis", -1);
  for (auto n : {"s_after", "s_before", "s_ident", "sm", "cat", "d_down", "d_up", "plus"}) b.fetch(n);
  auto g = importBuilt(b);
  EXPECT_TRUE(g.isInitializer("filled"));
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, 3, 4}, 14);
  auto out = runForward(g, {{"x", x}});
  Tensor after({2, 3, 4}), before({2, 3, 4}), sm({2, 3, 4}), cat({2, 6, 4}), down({2, 3, 4}),
      plus({2, 3, 4});
  for (int64_t i = 0; i < 24; ++i) {
    after.f32()[i] = 2 * x.f32()[i] + 0.5f;
    before.f32()[i] = 2 * (x.f32()[i] + 0.5f);
    down.f32()[i] = 0.7f * x.f32()[i];
    plus.f32()[i] = x.f32()[i] + 2.5f;
  }
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t w = 0; w < 4; ++w) {
      double z = 0;
      for (int64_t c = 0; c < 3; ++c) z += std::exp(x.f32()[(n * 3 + c) * 4 + w]);
      for (int64_t c = 0; c < 3; ++c) {
        int64_t i = (n * 3 + c) * 4 + w;
        sm.f32()[i] = static_cast<float>(std::exp(x.f32()[i]) / z);
        cat.f32()[(n * 6 + c) * 4 + w] = x.f32()[i];
        cat.f32()[(n * 6 + 3 + c) * 4 + w] = after.f32()[i];
      }
    }
  expectClose(out.at("s_after"), after, 1e-6f, "scale after");
  expectClose(out.at("s_before"), before, 1e-6f, "scale before");
  expectClose(out.at("s_ident"), x, 0.f, "scale identity");
  expectClose(out.at("sm"), sm, 1e-5f, "softmax axis 1");
  expectClose(out.at("cat"), cat, 0.f, "concat");
  expectClose(out.at("d_down"), down, 1e-6f, "dropout downgrade_in_infer");
  expectClose(out.at("d_up"), x, 0.f, "dropout upscale_in_train");
  expectClose(out.at("plus"), plus, 1e-6f, "fill_constant + add");
}

TEST(PaddleOpsTensor, FlattenReshapeTranspose) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 3, 4, 5});
  for (auto n : {"f2", "fr", "fall", "r", "t"}) b.var(n, {-1});
  b.op("flatten2").in("X", {"x"}).out("Out", {"f2"}).out("XShape", {"f2_xs"}).i("axis", 2);
  b.op("flatten_contiguous_range").in("X", {"x"}).out("Out", {"fr"})
      .i("start_axis", 1).i("stop_axis", 2);
  b.op("flatten_contiguous_range").in("X", {"x"}).out("Out", {"fall"})
      .i("start_axis", 0).i("stop_axis", -1);
  b.op("reshape2").in("X", {"x"}).out("Out", {"r"}).ints("shape", {0, -1, 2});
  b.op("transpose2").in("X", {"x"}).out("Out", {"t"}).ints("axis", {0, 3, 1, 2});
  for (auto n : {"f2", "fr", "fall", "r", "t"}) b.fetch(n);
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, 3, 4, 5}, 15);
  auto out = runForward(g, {{"x", x}});
  expectClose(out.at("f2"), x.reshaped({6, 20}), 0.f, "flatten2 axis 2");
  expectClose(out.at("fr"), x.reshaped({2, 12, 5}), 0.f, "flatten_contiguous_range 1..2");
  expectClose(out.at("fall"), x.reshaped({120}), 0.f, "flatten_contiguous_range 0..-1");
  expectClose(out.at("r"), x.reshaped({2, 30, 2}), 0.f, "reshape2");
  Tensor t({2, 5, 3, 4});
  for (int64_t n = 0; n < 2; ++n) for (int64_t c = 0; c < 3; ++c)
    for (int64_t h = 0; h < 4; ++h) for (int64_t w = 0; w < 5; ++w)
      t.f32()[((n * 5 + w) * 3 + c) * 4 + h] = at4(x, n, c, h, w);
  expectClose(out.at("t"), t, 0.f, "transpose2");
}

}  // namespace
}  // namespace slim::test
