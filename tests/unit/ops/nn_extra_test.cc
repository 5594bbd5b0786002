// Resize/Upsample, LayerNormalization, InstanceNormalization, PRelu,
// ReduceMax/Min, ArgMax/Min and ConvTranspose: forward against naive loops,
// backward by finite differences, the parameter gradients (sums over the
// batch) from two thread-ranks of half a batch each, reduced by the ops
// themselves, bit-identical to one rank holding the whole batch, and the same
// bits for any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

using test::randomTensor;

std::unique_ptr<ops::Op> make(const std::string& type, const ops::Attrs& a = {}) {
  return ops::OpRegistry::get().create(type, a, "t");
}

Tensor floats(Shape s, std::vector<float> v) { return Tensor::fromVector(std::move(s), v); }

void expectNear(const Tensor& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.f32()[i], want[i], tol) << "element " << i;
}

// ---- Resize ----------------------------------------------------------------

ops::Attrs resizeAttrs(const std::string& mode, const std::string& coord,
                       const std::string& nearest = "round_prefer_floor") {
  ops::Attrs a;
  a.set("mode", mode);
  a.set("coordinate_transformation_mode", coord);
  a.set("nearest_mode", nearest);
  return a;
}

// F.interpolate(mode='bilinear', align_corners=False) written out: the
// source coordinate clamped at 0, the upper tap at the edge.
float torchBilinear(const float* x, int64_t H, int64_t W, int64_t oh, int64_t ow, double sh,
                    double sw) {
  auto src = [](int64_t o, double s, int64_t in, int64_t& i0, int64_t& i1) {
    const double v = std::max(0.0, (o + 0.5) / s - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(v), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    return static_cast<float>(v - static_cast<double>(i0));
  };
  int64_t h0, h1, w0, w1;
  const float lh = src(oh, sh, H, h0, h1), lw = src(ow, sw, W, w0, w1);
  return (1 - lh) * ((1 - lw) * x[h0 * W + w0] + lw * x[h0 * W + w1]) +
         lh * ((1 - lw) * x[h1 * W + w0] + lw * x[h1 * W + w1]);
}

TEST(Resize, BilinearHalfPixelMatchesTorchInterpolate) {
  Tensor x = randomTensor({2, 3, 5, 4}, 1);
  for (const char* coord : {"half_pixel", "pytorch_half_pixel"}) {
    auto op = make("Resize", resizeAttrs("linear", coord));
    std::vector<Tensor> in{x, Tensor(), Tensor(), Tensor::fromInts({4}, {2, 3, 9, 11})};
    Tensor y = test::runForward(*op, in, 1, false)[0];
    ASSERT_EQ(y.shape(), (Shape{2, 3, 9, 11}));
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t oh = 0; oh < 9; ++oh)
        for (int64_t ow = 0; ow < 11; ++ow)
          ASSERT_NEAR(y.f32()[(p * 9 + oh) * 11 + ow],
                      torchBilinear(x.f32() + p * 20, 5, 4, oh, ow, 9.0 / 5, 11.0 / 4), 1e-5)
              << coord << " plane " << p << " (" << oh << ", " << ow << ")";
  }
}

TEST(Resize, NearestModesAndScales) {
  Tensor x = floats({1, 1, 1, 4}, {1, 2, 3, 4});
  Tensor scales = floats({4}, {1, 1, 1, 2});
  auto run = [&](const ops::Attrs& a) {
    auto op = make("Resize", a);
    std::vector<Tensor> in{x, Tensor(), scales};
    return test::runForward(*op, in, 1, false)[0];
  };
  // half_pixel, x2: source (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, ...
  expectNear(run(resizeAttrs("nearest", "half_pixel")), {1, 1, 2, 2, 3, 3, 4, 4});
  expectNear(run(resizeAttrs("nearest", "asymmetric", "ceil")), {1, 2, 2, 3, 3, 4, 4, 4});
  // align_corners, 4 -> 8: o * 3 / 7; 0.5 ties never occur, round to nearest.
  expectNear(run(resizeAttrs("nearest", "align_corners", "round_prefer_ceil")),
             {1, 1, 2, 2, 3, 3, 4, 4});
}

TEST(Resize, UpsampleOpset7And9) {
  ops::Attrs a;
  a.set("mode", std::string("nearest"));
  a.set("scales", std::vector<float>{1, 1, 2, 2});
  auto op = make("Upsample", a);
  std::vector<Tensor> in{floats({1, 1, 1, 2}, {5, 6})};
  expectNear(test::runForward(*op, in, 1, false)[0], {5, 5, 6, 6, 5, 5, 6, 6});
  auto op9 = make("Upsample", resizeAttrs("linear", "half_pixel"));
  std::vector<Tensor> in9{floats({1, 1, 1, 2}, {0, 4}), floats({4}, {1, 1, 1, 2})};
  // Asymmetric: sources 0, 0.5, 1, 1.5 (edge-clamped).
  expectNear(test::runForward(*op9, in9, 1, false)[0], {0, 2, 4, 4});
}

TEST(Resize, Gradients) {
  for (const char* coord : {"half_pixel", "align_corners", "asymmetric"}) {
    std::vector<Tensor> up{randomTensor({2, 2, 3, 4}, 2), Tensor(), Tensor(),
                           Tensor::fromInts({4}, {2, 2, 7, 5})};
    test::gradCheck("Resize", resizeAttrs("linear", coord), up, 1);
    std::vector<Tensor> down{randomTensor({1, 2, 6, 5}, 3), Tensor(), Tensor(),
                             Tensor::fromInts({4}, {1, 2, 3, 2})};
    test::gradCheck("Resize", resizeAttrs("linear", coord), down, 1);
  }
  std::vector<Tensor> nn{randomTensor({2, 3, 4}, 4), Tensor(), floats({3}, {1, 1.5f, 0.5f})};
  test::gradCheck("Resize", resizeAttrs("nearest", "half_pixel"), nn, 1);
}

TEST(Resize, RefusesUnsupportedModes) {
  auto refused = [](const ops::Attrs& a) {
    try {
      make("Resize", a);
    } catch (const ModelError& e) {
      return std::string(e.what()).find("not supported") != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused(resizeAttrs("cubic", "half_pixel")));
  EXPECT_TRUE(refused(resizeAttrs("linear", "tf_crop_and_resize")));
  ops::Attrs aa = resizeAttrs("linear", "half_pixel");
  aa.set("antialias", int64_t{1});
  EXPECT_TRUE(refused(aa));
  // Linear on a leading axis: refused at run time.
  auto op = make("Resize", resizeAttrs("linear", "half_pixel"));
  std::vector<Tensor> in{randomTensor({1, 2, 3, 3}, 5), Tensor(), Tensor(),
                         Tensor::fromInts({4}, {1, 4, 3, 3})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ModelError);
}

// ---- Exact two-rank reduction ------------------------------------------------

// Threads-as-ranks StateSync adding fixed-point values exactly.
class ExactSync : public ops::StateSync {
 public:
  explicit ExactSync(int size) : size_(size) {}
  void allreduce(float* data, size_t n, ops::SyncOp) override {
    std::vector<ops::Fixed> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<ops::Fixed>(data[i]);
    reduce(v.data(), n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(v[i]);
  }
  void sumFixed(ops::Fixed* data, size_t n) override { reduce(data, n); }
  int size() const override { return size_; }

 private:
  void reduce(ops::Fixed* data, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    if (arrived_ == 0) acc_.assign(data, data + n);
    else
      for (size_t i = 0; i < n; ++i) acc_[i] += data[i];
    if (++arrived_ == size_) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      const int64_t gen = generation_;
      if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return generation_ != gen; }))
        throw CommError("ExactSync: timed out", -1, "sumFixed");
    }
    std::copy(result_.begin(), result_.end(), data);
  }
  int size_, arrived_ = 0;
  int64_t generation_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ops::Fixed> acc_, result_;
};

Tensor rows(const Tensor& t, int64_t begin, int64_t end) {
  Shape s = t.shape();
  const int64_t inner = t.numel() / s[0];
  s[0] = end - begin;
  Tensor out(s);
  std::copy(t.f32() + begin * inner, t.f32() + end * inner, out.f32());
  return out;
}

// Gradients of every input of `type` for inputs `in` (input 0 the batch),
// dy = `dy`; with `sync`, the inputs `params` are reduced by the op.
std::vector<Tensor> grads(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in,
                          const Tensor& dy, ops::StateSync* sync,
                          const std::vector<bool>& params) {
  auto op = make(type, a);
  if (sync) op->setRankReducedInputs(params);
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = sync;
  std::vector<Tensor*> pin;
  for (auto& t : in) pin.push_back(t.defined() ? &t : nullptr);
  Tensor y;
  op->forward(pin, {&y}, ctx);
  std::vector<Tensor> g(in.size());
  std::vector<Tensor*> din;
  for (auto& t : g) din.push_back(&t);
  op->backward(pin, {&y}, {&dy}, din, ctx);
  return g;
}

// Whole batch on one rank vs halves on two ranks: every parameter gradient
// (params[i]) of each rank, times 2 (the op returns the mean over ranks), has
// the bits of the whole batch's.
void expectRankExact(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in,
                     const std::vector<bool>& params) {
  const int64_t N = in[0].dim(0), half = N / 2;
  auto probe = make(type, a);
  std::vector<Tensor> copy;
  for (auto& t : in) copy.push_back(t.defined() ? t.clone() : Tensor());
  Tensor y0 = test::runForward(*probe, copy, 1, true)[0];
  Tensor dy = randomTensor(y0.shape(), 77);
  auto full = grads(type, a, in, dy, nullptr, params);
  ExactSync sync(2);
  std::vector<Tensor> res[2];
  std::exception_ptr err[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        const int64_t b = r * half, e = r == 0 ? half : N;
        std::vector<Tensor> rin{rows(in[0], b, e)};
        for (size_t i = 1; i < in.size(); ++i) rin.push_back(in[i]);
        res[r] = grads(type, a, rin, rows(dy, b, e), &sync, params);
      } catch (...) {
        err[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : err)
    if (e) std::rethrow_exception(e);
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i]) continue;
    const Tensor& f = full[i];
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(res[r][i].numel(), f.numel());
      for (int64_t k = 0; k < f.numel(); ++k)
        ASSERT_EQ(res[r][i].f32()[k] * 2.f, f.f32()[k])
            << type << " input " << i << " element " << k << " rank " << r;
    }
  }
}

// ---- LayerNormalization / InstanceNormalization ------------------------------

ops::Attrs lnAttrs(int64_t axis) {
  ops::Attrs a;
  a.set("axis", axis);
  a.set("epsilon", 1e-3f);
  return a;
}

TEST(LayerNorm, ForwardAndStatistics) {
  Tensor x = randomTensor({2, 3, 4}, 6, -2.f, 3.f);
  Tensor s = randomTensor({3, 4}, 7, 0.5f, 1.5f), b = randomTensor({3, 4}, 8);
  auto op = make("LayerNormalization", lnAttrs(1));
  std::vector<Tensor> in{x, s, b};
  auto out = test::runForward(*op, in, 3, false);
  ASSERT_EQ(out[1].shape(), (Shape{2, 1, 1}));
  for (int64_t r = 0; r < 2; ++r) {
    double m = 0, v = 0;
    for (int64_t d = 0; d < 12; ++d) m += x.f32()[r * 12 + d];
    m /= 12;
    for (int64_t d = 0; d < 12; ++d) v += std::pow(x.f32()[r * 12 + d] - m, 2);
    v /= 12;
    EXPECT_NEAR(out[1].f32()[r], m, 1e-5);
    EXPECT_NEAR(out[2].f32()[r], 1 / std::sqrt(v + 1e-3), 1e-4);
    for (int64_t d = 0; d < 12; ++d)
      ASSERT_NEAR(out[0].f32()[r * 12 + d],
                  (x.f32()[r * 12 + d] - m) / std::sqrt(v + 1e-3) * s.f32()[d] + b.f32()[d], 1e-4);
  }
}

TEST(LayerNorm, Gradients) {
  test::gradCheck("LayerNormalization", lnAttrs(-1),
                  {randomTensor({3, 2, 5}, 9), randomTensor({5}, 10, 0.5f, 1.5f),
                   randomTensor({5}, 11)}, 1);
  test::gradCheck("LayerNormalization", lnAttrs(1),
                  {randomTensor({2, 3, 2}, 12), randomTensor({3, 2}, 13, 0.5f, 1.5f)}, 1);
}

TEST(LayerNorm, ParameterGradientsAreRankExact) {
  expectRankExact("LayerNormalization", lnAttrs(-1),
                  {randomTensor({16, 7, 33}, 14), randomTensor({33}, 15, 0.5f, 1.5f),
                   randomTensor({33}, 16)}, {false, true, true});
}

TEST(InstanceNorm, ForwardAndGradients) {
  Tensor x = randomTensor({2, 3, 2, 3}, 17, -1.f, 2.f);
  Tensor s = randomTensor({3}, 18, 0.5f, 1.5f), b = randomTensor({3}, 19);
  ops::Attrs a;
  a.set("epsilon", 1e-3f);
  auto op = make("InstanceNormalization", a);
  std::vector<Tensor> in{x, s, b};
  Tensor y = test::runForward(*op, in, 1, false)[0];
  for (int64_t r = 0; r < 6; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 6; ++k) m += x.f32()[r * 6 + k];
    m /= 6;
    for (int64_t k = 0; k < 6; ++k) v += std::pow(x.f32()[r * 6 + k] - m, 2);
    v /= 6;
    for (int64_t k = 0; k < 6; ++k)
      ASSERT_NEAR(y.f32()[r * 6 + k],
                  (x.f32()[r * 6 + k] - m) / std::sqrt(v + 1e-3) * s.f32()[r % 3] + b.f32()[r % 3],
                  1e-4);
  }
  test::gradCheck("InstanceNormalization", a, in, 1);
  expectRankExact("InstanceNormalization", a,
                  {randomTensor({6, 4, 5, 3}, 20), randomTensor({4}, 21, 0.5f, 1.5f),
                   randomTensor({4}, 22)}, {false, true, true});
}

// ---- PRelu, ReduceMax, ArgMax --------------------------------------------------

TEST(PRelu, ForwardGradientsAndRankExactSlope) {
  auto op = make("PRelu");
  std::vector<Tensor> in{floats({1, 2, 2}, {-1, 2, -3, 4}), floats({2, 1}, {0.5f, 0.25f})};
  expectNear(test::runForward(*op, in, 1, false)[0], {-0.5f, 2, -0.75f, 4});
  test::gradCheck("PRelu", {}, {randomTensor({3, 2, 3, 2}, 23), randomTensor({2, 1, 1}, 24)}, 1);
  test::gradCheck("PRelu", {}, {randomTensor({3, 4}, 25), randomTensor({4}, 26)}, 1);
  expectRankExact("PRelu", {}, {randomTensor({12, 3, 4, 5}, 27), randomTensor({3, 1, 1}, 28)},
                  {false, true});
}

TEST(ReduceMax, ForwardTiesAndGradient) {
  ops::Attrs a;
  a.set("axes", std::vector<int64_t>{1});
  a.set("keepdims", int64_t{0});
  auto op = make("ReduceMax", a);
  std::vector<Tensor> in{floats({2, 3}, {1, 5, 5, 7, 2, 7})};
  ops::RunContext ctx;
  Tensor y, dx;
  std::vector<Tensor*> pin{&in[0]};
  op->forward(pin, {&y}, ctx);
  expectNear(y, {5, 7});
  Tensor dy = floats({2}, {10, 20});
  op->backward(pin, {&y}, {&dy}, {&dx}, ctx);
  expectNear(dx, {0, 10, 0, 20, 0, 0});  // the first maximum on ties
  ops::Attrs all;
  test::gradCheck("ReduceMax", all, {randomTensor({2, 3, 4}, 29)}, 1);
  test::gradCheck("ReduceMax", a, {randomTensor({2, 3, 4}, 30)}, 1);
  auto mn = make("ReduceMin", a);
  expectNear(test::runForward(*mn, in, 1, false)[0], {1, 2});
  test::gradCheck("ReduceMin", a, {randomTensor({2, 3, 4}, 31)}, 1);
}

TEST(ArgMax, KeepdimsAndLastIndex) {
  ops::Attrs a;
  a.set("axis", int64_t{-1});
  a.set("select_last_index", int64_t{1});
  auto op = make("ArgMax", a);
  std::vector<Tensor> in{floats({2, 3}, {1, 5, 5, 7, 2, 7})};
  Tensor y = test::runForward(*op, in, 1, false)[0];
  ASSERT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(y.data<int64_t>()[0], 2);
  EXPECT_EQ(y.data<int64_t>()[1], 2);
  a.set("select_last_index", int64_t{0});
  a.set("keepdims", int64_t{0});
  auto first = make("ArgMax", a);
  y = test::runForward(*first, in, 1, false)[0];
  ASSERT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.data<int64_t>()[0], 1);
  EXPECT_EQ(y.data<int64_t>()[1], 0);
  EXPECT_FALSE(first->differentiable());
  auto amin = make("ArgMin", a);
  y = test::runForward(*amin, in, 1, false)[0];
  EXPECT_EQ(y.data<int64_t>()[0], 0);
  EXPECT_EQ(y.data<int64_t>()[1], 1);
}

// ---- ConvTranspose -------------------------------------------------------------

struct CtCase {
  int64_t N, C, H, W, M, kh, kw, sh, sw, dh, dw, group;
  std::vector<int64_t> pads, out_pad;
};

ops::Attrs ctAttrs(const CtCase& c) {
  ops::Attrs a;
  a.set("strides", std::vector<int64_t>{c.sh, c.sw});
  a.set("dilations", std::vector<int64_t>{c.dh, c.dw});
  a.set("pads", c.pads);
  a.set("output_padding", c.out_pad);
  a.set("group", c.group);
  return a;
}

// y (N, M, OH, OW) by scattering every x * w product to its output.
Tensor naiveConvTranspose(const CtCase& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t OH =
      c.sh * (c.H - 1) + c.out_pad[0] + (c.kh - 1) * c.dh + 1 - c.pads[0] - c.pads[2];
  const int64_t OW =
      c.sw * (c.W - 1) + c.out_pad[1] + (c.kw - 1) * c.dw + 1 - c.pads[1] - c.pads[3];
  const int64_t Cg = c.C / c.group, Mg = c.M / c.group;
  Tensor y({c.N, c.M, OH, OW});
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t p = 0; p < OH * OW; ++p) y.f32()[(n * c.M + m) * OH * OW + p] = b.f32()[m];
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t ci = 0; ci < c.C; ++ci)
      for (int64_t mg = 0; mg < Mg; ++mg)
        for (int64_t ih = 0; ih < c.H; ++ih)
          for (int64_t iw = 0; iw < c.W; ++iw)
            for (int64_t kh = 0; kh < c.kh; ++kh)
              for (int64_t kw = 0; kw < c.kw; ++kw) {
                const int64_t oh = ih * c.sh - c.pads[0] + kh * c.dh;
                const int64_t ow = iw * c.sw - c.pads[1] + kw * c.dw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                const int64_t m = (ci / Cg) * Mg + mg;
                y.f32()[((n * c.M + m) * OH + oh) * OW + ow] +=
                    x.f32()[((n * c.C + ci) * c.H + ih) * c.W + iw] *
                    w.f32()[((ci * Mg + mg) * c.kh + kh) * c.kw + kw];
              }
  return y;
}

const std::vector<CtCase> kCtCases = {
    {2, 3, 4, 5, 2, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, {0, 0}},
    {2, 4, 3, 3, 6, 3, 2, 2, 3, 1, 1, 2, {1, 0, 1, 1}, {1, 2}},
    {1, 2, 3, 4, 4, 2, 3, 2, 1, 2, 2, 1, {0, 1, 2, 0}, {0, 0}},
};

std::vector<Tensor> ctInputs(const CtCase& c, uint64_t seed) {
  return {randomTensor({c.N, c.C, c.H, c.W}, seed),
          randomTensor({c.C, c.M / c.group, c.kh, c.kw}, seed + 1), randomTensor({c.M}, seed + 2)};
}

TEST(ConvTranspose, ForwardMatchesNaiveScatter) {
  for (size_t i = 0; i < kCtCases.size(); ++i) {
    const CtCase& c = kCtCases[i];
    auto in = ctInputs(c, 40 + i);
    auto op = make("ConvTranspose", ctAttrs(c));
    Tensor y = test::runForward(*op, in, 1, false)[0];
    Tensor want = naiveConvTranspose(c, in[0], in[1], in[2]);
    ASSERT_EQ(y.shape(), want.shape()) << "case " << i;
    for (int64_t k = 0; k < y.numel(); ++k)
      ASSERT_NEAR(y.f32()[k], want.f32()[k], 1e-4) << "case " << i << " element " << k;
  }
}

TEST(ConvTranspose, Gradients) {
  for (size_t i = 0; i < kCtCases.size(); ++i)
    test::gradCheck("ConvTranspose", ctAttrs(kCtCases[i]), ctInputs(kCtCases[i], 50 + i), 1);
}

TEST(ConvTranspose, WeightAndBiasGradientsAreRankExact) {
  CtCase c = kCtCases[1];
  c.N = 16;
  expectRankExact("ConvTranspose", ctAttrs(c), ctInputs(c, 60), {false, true, true});
}

TEST(ConvTranspose, OutputShapeAndRefusals) {
  ops::Attrs a;
  a.set("strides", std::vector<int64_t>{3, 2});
  a.set("output_shape", std::vector<int64_t>{10, 8});
  auto op = make("ConvTranspose", a);
  std::vector<Tensor> in{randomTensor({1, 1, 3, 3}, 70), randomTensor({1, 2, 3, 3}, 71)};
  EXPECT_EQ(test::runForward(*op, in, 1, false)[0].shape(), (Shape{1, 2, 10, 8}));
  auto op1d = make("ConvTranspose");
  std::vector<Tensor> in1d{randomTensor({1, 1, 3}, 72), randomTensor({1, 2, 3}, 73)};
  EXPECT_THROW(test::runForward(*op1d, in1d, 1, false), ModelError);
}

// Every output and gradient with one thread and with three.
TEST(NnExtra, SameBitsForAnyThreadCount) {
  struct Case {
    std::string type;
    ops::Attrs attrs;
    std::vector<Tensor> in;
  };
  CtCase ct = kCtCases[1];
  ct.N = 10;
  std::vector<Case> cases = {
      {"LayerNormalization", lnAttrs(-1),
       {randomTensor({10, 5, 40}, 80), randomTensor({40}, 81), randomTensor({40}, 82)}},
      {"InstanceNormalization", {},
       {randomTensor({10, 3, 4, 5}, 83), randomTensor({3}, 84), randomTensor({3}, 85)}},
      {"PRelu", {}, {randomTensor({10, 3, 4, 5}, 86), randomTensor({3, 1, 1}, 87)}},
      {"ConvTranspose", ctAttrs(ct), ctInputs(ct, 88)},
      {"Resize", resizeAttrs("linear", "half_pixel"),
       {randomTensor({10, 3, 5, 6}, 89), Tensor(), floats({4}, {1, 1, 2.5f, 0.5f})}},
  };
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
  };
  const int saved = omp_get_max_threads();
  for (auto& c : cases) {
    Tensor y[2];
    std::vector<Tensor> g[2];
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t == 0 ? 1 : 3);
      auto op = make(c.type, c.attrs);
      y[t] = test::runForward(*op, c.in, 1, true)[0];
      g[t] = grads(c.type, c.attrs, c.in, randomTensor(y[t].shape(), 90), nullptr, {});
    }
    omp_set_num_threads(saved);
    EXPECT_TRUE(same(y[0], y[1])) << c.type;
    for (size_t i = 0; i < g[0].size(); ++i)
      if (g[0][i].defined()) {
        EXPECT_TRUE(same(g[0][i], g[1][i])) << c.type << " input " << i;
      }
  }
}

}  // namespace
}  // namespace slim
