// Paddle importer, op by op: conv2d / depthwise_conv2d, batch_norm, pool2d and
// activations, each checked against naive loops written here.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tests/unit/models/paddle_test_util.h"

namespace slim::test {
namespace {

struct Conv {
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0, groups = 1;
};

// x: (N, C, H, W), w: (M, C/g, kH, kW) -> (N, M, OH, OW).
Tensor naiveConv(const Tensor& x, const Tensor& w, const Conv& p) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t M = w.dim(0), Cg = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  const int64_t OH = (H + p.pt + p.pb - ((KH - 1) * p.dh + 1)) / p.sh + 1;
  const int64_t OW = (W + p.pl + p.pr - ((KW - 1) * p.dw + 1)) / p.sw + 1;
  Tensor y({N, M, OH, OW});
  const int64_t Mg = M / p.groups;
  (void)C;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0;
          const int64_t g = m / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t h = oh * p.sh - p.pt + i * p.dh, ww = ow * p.sw - p.pl + j * p.dw;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                acc += x.f32()[((n * x.dim(1) + g * Cg + c) * H + h) * W + ww] *
                       w.f32()[((m * Cg + c) * KH + i) * KW + j];
              }
          y.f32()[((n * M + m) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
  return y;
}

PaddleModelBuilder convModel(const std::string& type, const Shape& xs, const Tensor& w) {
  PaddleModelBuilder b;
  b.feed("x", xs);
  b.param("conv_w", w);
  b.var("y", {-1, w.dim(0), -1, -1});
  return b;
}

TEST(PaddleOpsNn, Conv2dExplicitPaddingsStridesDilations) {
  Tensor w = randomTensor({4, 3, 3, 2}, 1);
  auto b = convModel("conv2d", {-1, 3, 7, 6}, w);
  // Paddle's 4-value paddings are [top, bottom, left, right].
  b.op("conv2d").in("Input", {"x"}).in("Filter", {"conv_w"}).in("Bias", {}).out("Output", {"y"})
      .ints("strides", {2, 1}).ints("paddings", {1, 0, 2, 1}).ints("dilations", {1, 2})
      .i("groups", 1).s("data_format", "NCHW").s("padding_algorithm", "EXPLICIT");
  b.fetch("y");
  auto g = importBuilt(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Conv");
  EXPECT_EQ(g.nodes[0].name, "conv2d_1");
  EXPECT_TRUE(g.trainable.count("conv_w"));
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, 3, 7, 6}, 2);
  auto out = runForward(g, {{"x", x}});
  Conv p;
  p.sh = 2; p.dw = 2; p.pt = 1; p.pb = 0; p.pl = 2; p.pr = 1;
  expectClose(out.at("y"), naiveConv(x, w, p), 1e-4f, "conv2d");
}

TEST(PaddleOpsNn, DepthwiseConvSamePadding) {
  Tensor w = randomTensor({3, 1, 3, 3}, 3);
  auto b = convModel("depthwise_conv2d", {-1, 3, 7, 7}, w);
  // SAME: out = ceil(7/2) = 4, total pad = 3*2+3-7 = 2 -> 1 before, 1 after.
  // Paddle forces dilation 1 under SAME.
  b.op("depthwise_conv2d").in("Input", {"x"}).in("Filter", {"conv_w"}).out("Output", {"y"})
      .ints("strides", {2, 2}).ints("paddings", {5, 5}).ints("dilations", {2, 2})
      .i("groups", 3).s("padding_algorithm", "SAME");
  b.fetch("y");
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({1, 3, 7, 7}, 4);
  Conv p;
  p.sh = p.sw = 2; p.pt = p.pb = p.pl = p.pr = 1; p.groups = 3;
  expectClose(runForward(g, {{"x", x}}).at("y"), naiveConv(x, w, p), 1e-4f, "depthwise");
}

TEST(PaddleOpsNn, Conv2dValidAndTwoValuePaddings) {
  Tensor w = randomTensor({2, 2, 2, 3}, 5);
  for (std::string alg : {"VALID", "EXPLICIT"}) {
    auto b = convModel("conv2d", {-1, 2, 5, 6}, w);
    b.op("conv2d").in("Input", {"x"}).in("Filter", {"conv_w"}).out("Output", {"y"})
        .ints("strides", {1, 2}).ints("paddings", {2, 1}).s("padding_algorithm", alg);
    b.fetch("y");
    auto g = importBuilt(b);
    SLIM_SKIP_IF_NO_KERNELS(g);
    Tensor x = randomTensor({1, 2, 5, 6}, 6);
    Conv p;
    p.sw = 2;
    if (alg == "EXPLICIT") { p.pt = p.pb = 2; p.pl = p.pr = 1; }
    expectClose(runForward(g, {{"x", x}}).at("y"), naiveConv(x, w, p), 1e-4f, alg);
  }
}

TEST(PaddleOpsNn, Conv2dRejectsNhwc) {
  Tensor w = randomTensor({2, 2, 1, 1}, 5);
  auto b = convModel("conv2d", {-1, 2, 5, 6}, w);
  b.op("conv2d").in("Input", {"x"}).in("Filter", {"conv_w"}).out("Output", {"y"})
      .s("data_format", "NHWC");
  b.fetch("y");
  try {
    importBuilt(b);
    FAIL() << "NHWC accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("NHWC"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("conv2d"), std::string::npos) << e.what();
  }
}

TEST(PaddleOpsNn, BatchNormInferenceAndBuffers) {
  const int64_t C = 3;
  PaddleModelBuilder b;
  b.feed("x", {-1, C, 2, 2});
  Tensor scale = randomTensor({C}, 7), bias = randomTensor({C}, 8), mean = randomTensor({C}, 9);
  Tensor var = randomTensor({C}, 10, 0.5f, 2.f);
  b.param("bn_scale", scale); b.param("bn_offset", bias);
  b.param("bn_mean", mean); b.param("bn_variance", var);
  b.var("y", {-1, C, 2, 2});
  b.op("batch_norm").in("X", {"x"}).in("Scale", {"bn_scale"}).in("Bias", {"bn_offset"})
      .in("Mean", {"bn_mean"}).in("Variance", {"bn_variance"}).out("Y", {"y"})
      .out("MeanOut", {"bn_mean"}).out("VarianceOut", {"bn_variance"})
      .out("SavedMean", {"bn_saved_mean"}).out("SavedVariance", {"bn_saved_var"})
      .f("epsilon", 1e-3f).f("momentum", 0.8f).b("is_test", true).s("data_layout", "NCHW");
  b.fetch("y");
  auto g = importBuilt(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "BatchNormalization");
  EXPECT_FLOAT_EQ(g.nodes[0].attrs.getFloat("momentum"), 0.8f);
  EXPECT_TRUE(g.buffers.count("bn_mean") && g.buffers.count("bn_variance"));
  EXPECT_FALSE(g.trainable.count("bn_mean"));
  EXPECT_TRUE(g.trainable.count("bn_scale") && g.trainable.count("bn_offset"));
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({2, C, 2, 2}, 11);
  Tensor want({2, C, 2, 2});
  for (int64_t k = 0; k < x.numel(); ++k) {
    int64_t c = (k / 4) % C;
    want.f32()[k] = scale.f32()[c] * (x.f32()[k] - mean.f32()[c]) /
                        std::sqrt(var.f32()[c] + 1e-3f) + bias.f32()[c];
  }
  expectClose(runForward(g, {{"x", x}}).at("y"), want, 1e-5f, "batch_norm");
}

struct Pool {
  bool max = true, exclusive = true, ceil = false;
  int64_t kh = 2, kw = 2, sh = 2, sw = 2, pt = 0, pl = 0, pb = 0, pr = 0;
};

Tensor naivePool(const Tensor& x, const Pool& p) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  auto osz = [&](int64_t in, int64_t k, int64_t s, int64_t pa, int64_t pb2) {
    int64_t span = in + pa + pb2 - k;
    return (p.ceil ? (span + s - 1) / s : span / s) + 1;
  };
  const int64_t OH = osz(H, p.kh, p.sh, p.pt, p.pb), OW = osz(W, p.kw, p.sw, p.pl, p.pr);
  Tensor y({N, C, OH, OW});
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = p.max ? -std::numeric_limits<double>::infinity() : 0;
        int64_t valid = 0;
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) {
            int64_t h = oh * p.sh - p.pt + i, w = ow * p.sw - p.pl + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = x.f32()[(nc * H + h) * W + w];
            acc = p.max ? std::max(acc, v) : acc + v;
            ++valid;
          }
        // Paddle: exclusive divides by the in-bounds count, otherwise by the kernel.
        if (!p.max) acc /= p.exclusive ? valid : p.kh * p.kw;
        y.f32()[(nc * OH + oh) * OW + ow] = static_cast<float>(acc);
      }
  return y;
}

Tensor runPool(const Tensor& x, const std::function<void(PaddleOp&)>& attrs, bool& skipped,
               bool known_hw = true) {
  PaddleModelBuilder b;
  b.feed("x", {-1, x.dim(1), known_hw ? x.dim(2) : -1, known_hw ? x.dim(3) : -1});
  b.var("y", {-1, x.dim(1), -1, -1});
  PaddleOp op = b.op("pool2d");
  op.in("X", {"x"}).out("Out", {"y"});
  attrs(op);
  b.fetch("y");
  auto g = importBuilt(b);
  skipped = !missingKernels(g).empty();
  if (skipped) return {};
  return runForward(g, {{"x", x}}).at("y");
}

TEST(PaddleOpsNn, Pool2dVariants) {
  Tensor x = randomTensor({2, 3, 5, 6}, 12);
  bool skipped = false;
  // max, 4-value paddings [top, bottom, left, right], ceil_mode; with known
  // and unknown spatial dims (the importer rewrites ceil_mode when it can).
  for (bool known : {true, false}) {
    Tensor y = runPool(x, [](PaddleOp& o) {
      o.s("pooling_type", "max").ints("ksize", {3, 3}).ints("strides", {2, 2})
          .ints("paddings", {1, 0, 0, 0}).b("ceil_mode", true);
    }, skipped, known);
    if (skipped) GTEST_SKIP() << "pool kernels not registered yet";
    Pool p;
    p.kh = p.kw = 3; p.pt = 1; p.ceil = true;
    expectClose(y, naivePool(x, p), 1e-6f, known ? "max pool ceil" : "max pool ceil, dims unknown");
  }
  // A ceil-mode window that starts in the end padding: Paddle keeps it (avg
  // inclusive divides by the full kernel), ONNX would drop it.
  Tensor y = runPool(x, [](PaddleOp& o) {
    o.s("pooling_type", "avg").ints("ksize", {3, 2}).ints("strides", {2, 2})
        .ints("paddings", {1, 0, 0, 1}).b("ceil_mode", true).b("exclusive", false);
  }, skipped);
  Pool q;
  q.max = false; q.exclusive = false; q.kh = 3; q.pt = 1; q.pr = 1; q.ceil = true;
  Tensor want = naivePool(x, q);
  ASSERT_EQ(want.dim(3), 4);
  expectClose(y, want, 1e-6f, "avg pool ceil, window in padding");
  for (bool exclusive : {true, false}) {
    y = runPool(x, [&](PaddleOp& o) {
      o.s("pooling_type", "avg").ints("ksize", {3, 3}).ints("strides", {2, 2})
          .ints("paddings", {1, 1}).b("exclusive", exclusive);
    }, skipped);
    Pool a;
    a.max = false; a.exclusive = exclusive; a.kh = a.kw = 3; a.pt = a.pb = a.pl = a.pr = 1;
    expectClose(y, naivePool(x, a), 1e-5f, exclusive ? "avg exclusive" : "avg inclusive");
  }
}

TEST(PaddleOpsNn, Pool2dGlobalAndAdaptive) {
  Tensor x = randomTensor({2, 3, 4, 6}, 13);
  bool skipped = false;
  Pool whole;
  whole.kh = 4; whole.kw = 6; whole.sh = whole.sw = 1;
  for (std::string type : {"avg", "max"}) {
    whole.max = type == "max";
    Tensor want = naivePool(x, whole);
    Tensor y = runPool(x, [&](PaddleOp& o) {
      o.s("pooling_type", type).ints("ksize", {1, 1}).b("global_pooling", true);
    }, skipped);
    if (skipped) GTEST_SKIP() << "pool kernels not registered yet";
    expectClose(y, want, 1e-5f, "global " + type);
    y = runPool(x, [&](PaddleOp& o) {
      o.s("pooling_type", type).ints("ksize", {1, 1}).b("adaptive", true);
    }, skipped);
    expectClose(y, want, 1e-5f, "adaptive 1x1 " + type);
  }
  // Adaptive 2x3 over 4x6 = windows of 2x2 with stride 2.
  Tensor y = runPool(x, [&](PaddleOp& o) {
    o.s("pooling_type", "avg").ints("ksize", {2, 3}).b("adaptive", true);
  }, skipped);
  Pool a;
  a.max = false;
  expectClose(y, naivePool(x, a), 1e-5f, "adaptive 2x3");
}

TEST(PaddleOpsNn, Activations) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 7});
  struct Act { std::string type; std::function<void(PaddleOp&)> attrs; std::function<float(float)> ref; };
  auto sig = [](float v) { return 1.f / (1.f + std::exp(-v)); };
  std::vector<Act> acts = {
      {"relu", [](PaddleOp&) {}, [](float v) { return std::max(v, 0.f); }},
      {"relu6", [](PaddleOp& o) { o.f("threshold", 4.f); },
       [](float v) { return std::min(std::max(v, 0.f), 4.f); }},
      {"leaky_relu", [](PaddleOp& o) { o.f("alpha", 0.1f); },
       [](float v) { return v > 0 ? v : 0.1f * v; }},
      {"sigmoid", [](PaddleOp&) {}, sig},
      {"hard_sigmoid", [](PaddleOp& o) { o.f("slope", 0.25f).f("offset", 0.4f); },
       [](float v) { return std::min(std::max(0.25f * v + 0.4f, 0.f), 1.f); }},
      {"hard_swish", [](PaddleOp&) {},
       [](float v) { return v * std::min(std::max(v + 3.f, 0.f), 6.f) / 6.f; }},
      {"hard_swish", [](PaddleOp& o) { o.f("threshold", 5.f).f("scale", 4.f).f("offset", 2.f); },
       [](float v) { return v * std::min(std::max(v + 2.f, 0.f), 5.f) / 4.f; }},
      {"swish", [](PaddleOp&) {}, [sig](float v) { return v * sig(v); }},
      {"swish", [](PaddleOp& o) { o.f("beta", 2.f); }, [sig](float v) { return v * sig(2 * v); }},
  };
  for (size_t k = 0; k < acts.size(); ++k) {
    std::string out = "act_" + std::to_string(k);
    b.var(out, {-1, 7});
    PaddleOp o = b.op(acts[k].type);
    o.in("X", {"x"}).out("Out", {out});
    acts[k].attrs(o);
    b.fetch(out);
  }
  auto g = importBuilt(b);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = randomTensor({3, 7}, 14, -8.f, 8.f);
  auto out = runForward(g, {{"x", x}});
  for (size_t k = 0; k < acts.size(); ++k) {
    Tensor want({3, 7});
    for (int64_t i = 0; i < x.numel(); ++i) want.f32()[i] = acts[k].ref(x.f32()[i]);
    expectClose(out.at("act_" + std::to_string(k)), want, 1e-5f, acts[k].type + " #" + std::to_string(k));
  }
}

}  // namespace
}  // namespace slim::test
