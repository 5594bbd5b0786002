// MaxPool, AveragePool, GlobalAveragePool: forward against a reference that
// pads the image explicitly (with a mask of real and padded cells), output
// sizes under ceil_mode/auto_pad, and finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

struct PoolCase {
  std::string name;
  int64_t h, w, kh, kw, sh, sw;
  std::vector<int64_t> pads;  // top, left, bottom, right
  bool ceil_mode;
  bool include_pad;           // AveragePool count_include_pad
  int64_t dh = 1, dw = 1;     // dilations (MaxPool only in the cases below)
  std::string auto_pad = "NOTSET";
};
// gtest prints the case name instead of the bytes of the struct.
void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }


ops::Attrs poolAttrs(const PoolCase& p, bool avg) {
  ops::Attrs a;
  a.set("kernel_shape", std::vector<int64_t>{p.kh, p.kw});
  a.set("strides", std::vector<int64_t>{p.sh, p.sw});
  if (p.auto_pad == "NOTSET") a.set("pads", p.pads);
  else a.set("auto_pad", p.auto_pad);
  a.set("ceil_mode", int64_t{p.ceil_mode});
  if (avg) a.set("count_include_pad", int64_t{p.include_pad});
  if (p.dh != 1 || p.dw != 1) a.set("dilations", std::vector<int64_t>{p.dh, p.dw});
  return a;
}

// Output size of one axis (PyTorch rule: the last window starts inside).
int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, bool ceil) {
  const int64_t ext = (k - 1) * d + 1;
  const double q = static_cast<double>(in + pb + pe - ext) / s;
  int64_t out = static_cast<int64_t>(ceil ? std::ceil(q) : std::floor(q)) + 1;
  if (ceil && (out - 1) * s >= in + pb) --out;
  return out;
}

// Reference on an explicitly padded canvas: value, "is input" and "is in the
// declared padding" per cell; the canvas is large enough for any window.
Tensor reference(const PoolCase& p, const Tensor& x, bool avg) {
  const int64_t NC = x.dim(0) * x.dim(1);
  int64_t pt = p.pads.empty() ? 0 : p.pads[0], pl = p.pads.empty() ? 0 : p.pads[1];
  int64_t pb = p.pads.empty() ? 0 : p.pads[2], pr = p.pads.empty() ? 0 : p.pads[3];
  int64_t oh = outSize(p.h, p.kh, p.sh, p.dh, pt, pb, p.ceil_mode);
  int64_t ow = outSize(p.w, p.kw, p.sw, p.dw, pl, pr, p.ceil_mode);
  if (p.auto_pad == "SAME_UPPER") {
    oh = (p.h + p.sh - 1) / p.sh;
    ow = (p.w + p.sw - 1) / p.sw;
    const int64_t th = std::max<int64_t>(0, (oh - 1) * p.sh + (p.kh - 1) * p.dh + 1 - p.h);
    const int64_t tw = std::max<int64_t>(0, (ow - 1) * p.sw + (p.kw - 1) * p.dw + 1 - p.w);
    pt = th / 2; pb = th - pt; pl = tw / 2; pr = tw - pl;
  }
  const int64_t CH = pt + p.h + pb + p.kh * p.dh + p.sh, CW = pl + p.w + pr + p.kw * p.dw + p.sw;
  Tensor y({x.dim(0), x.dim(1), oh, ow});
  for (int64_t c = 0; c < NC; ++c) {
    std::vector<float> val(CH * CW, 0.f);
    std::vector<int> real(CH * CW, 0), padded(CH * CW, 0);
    for (int64_t i = 0; i < CH; ++i)
      for (int64_t j = 0; j < CW; ++j) {
        const int64_t ih = i - pt, iw = j - pl;
        padded[i * CW + j] = i < pt + p.h + pb && j < pl + p.w + pr;
        if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) {
          real[i * CW + j] = 1;
          val[i * CW + j] = x.f32()[(c * p.h + ih) * p.w + iw];
        }
      }
    for (int64_t a = 0; a < oh; ++a)
      for (int64_t b = 0; b < ow; ++b) {
        double s = 0, mx = -std::numeric_limits<double>::infinity();
        int cnt = 0;
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t cell = (a * p.sh + i * p.dh) * CW + b * p.sw + j * p.dw;
            if (real[cell]) { s += val[cell]; mx = std::max<double>(mx, val[cell]); }
            cnt += p.include_pad ? padded[cell] : real[cell];
          }
        y.f32()[(c * oh + a) * ow + b] = static_cast<float>(avg ? s / cnt : mx);
      }
  }
  return y;
}

// Distinct values 0.07 apart in shuffled order, so finite differences never
// move the argmax of a window.
Tensor distinctTensor(Shape s, uint64_t seed) {
  Tensor t(s);
  std::vector<float> v(t.numel());
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.07f * static_cast<float>(i) - 1.f;
  Rng rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

class PoolTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolTest, MaxPoolForwardAndGradient) {
  const PoolCase& p = GetParam();
  Tensor x = distinctTensor({2, 2, p.h, p.w}, 3);
  auto op = ops::OpRegistry::get().create("MaxPool", poolAttrs(p, false), p.name);
  std::vector<Tensor> in{x};
  auto y = test::runForward(*op, in, 1, true)[0];
  auto ref = reference(p, x, false);
  ASSERT_EQ(y.shape(), ref.shape()) << p.name;
  for (int64_t i = 0; i < ref.numel(); ++i) ASSERT_EQ(y.f32()[i], ref.f32()[i]) << i;
  test::gradCheck("MaxPool", poolAttrs(p, false), {x}, 1);
}

TEST_P(PoolTest, AveragePoolForwardAndGradient) {
  PoolCase p = GetParam();
  p.dh = p.dw = 1;
  Tensor x = test::randomTensor({2, 2, p.h, p.w}, 4);
  auto op = ops::OpRegistry::get().create("AveragePool", poolAttrs(p, true), p.name);
  std::vector<Tensor> in{x};
  auto y = test::runForward(*op, in, 1, true)[0];
  auto ref = reference(p, x, true);
  ASSERT_EQ(y.shape(), ref.shape()) << p.name;
  for (int64_t i = 0; i < ref.numel(); ++i) ASSERT_NEAR(y.f32()[i], ref.f32()[i], 1e-5f) << i;
  test::gradCheck("AveragePool", poolAttrs(p, true), {x}, 1);
}

const PoolCase kPoolCases[] = {
    {"k2s2", 4, 6, 2, 2, 2, 2, {0, 0, 0, 0}, false, false},
    {"k3s2p1", 5, 5, 3, 3, 2, 2, {1, 1, 1, 1}, false, false},
    {"k3s2p1_incl", 5, 6, 3, 3, 2, 2, {1, 1, 1, 1}, false, true},
    {"k3s2_ceil", 6, 6, 3, 3, 2, 2, {0, 0, 0, 0}, true, false},
    {"k3s2_ceil_incl", 6, 7, 3, 3, 2, 2, {0, 0, 0, 0}, true, true},
    {"k2s2p1_ceil_incl_trim", 5, 5, 2, 2, 2, 2, {1, 1, 1, 1}, true, true},
    {"asym_pads", 5, 4, 3, 2, 1, 2, {1, 0, 0, 1}, false, true},
    {"dilated", 7, 6, 2, 3, 1, 1, {0, 1, 0, 1}, false, false, 2, 2},
    {"same_upper", 5, 6, 3, 3, 2, 2, {}, false, false, 1, 1, "SAME_UPPER"},
};
INSTANTIATE_TEST_SUITE_P(Cases, PoolTest, ::testing::ValuesIn(kPoolCases),
                         [](const auto& info) { return info.param.name; });

TEST(Pool, CeilModeTrimsWindowStartingInPadding) {
  // PyTorch: MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5x5 gives 3x3.
  ops::Attrs a = poolAttrs({"", 5, 5, 2, 2, 2, 2, {1, 1, 1, 1}, true, false}, false);
  auto op = ops::OpRegistry::get().create("MaxPool", a, "trim");
  std::vector<Tensor> in{Tensor({1, 1, 5, 5})};
  EXPECT_EQ(test::runForward(*op, in, 1, false)[0].shape(), (Shape{1, 1, 3, 3}));
}

// Ties: the first inside tap in window order (kh, then kw) wins, in the
// border windows and in the interior columns alike (resnet's 3x3 / 2 pool).
TEST(Pool, MaxPoolTiesGoToTheFirstTap) {
  ops::Attrs a = poolAttrs({"", 9, 11, 3, 3, 2, 2, {1, 1, 1, 1}, false, false}, false);
  auto op = ops::OpRegistry::get().create("MaxPool", a, "ties");
  Tensor x({1, 2, 9, 11});
  x.fill(0.5f);
  std::vector<Tensor*> in{&x};
  Tensor y;
  std::vector<Tensor*> out{&y};
  ops::RunContext ctx;
  op->forward(in, out, ctx);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 5, 6}));
  Tensor dy(y.shape());
  dy.fill(1.f);
  Tensor dx;
  std::vector<const Tensor*> dout{&dy};
  std::vector<Tensor*> din{&dx};
  op->backward(in, out, dout, din, ctx);
  // Output (i, j) covers rows 2i-1.., columns 2j-1..: its first inside tap.
  std::vector<float> want(2 * 9 * 11, 0.f);
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 6; ++j)
        want[(c * 9 + std::max(0, 2 * i - 1)) * 11 + std::max(0, 2 * j - 1)] += 1.f;
  for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(dx.f32()[k], want[k]) << k;
}

// A MaxPool the executor marks forward-only (a frozen teacher's) keeps no
// argmax: the same outputs (borders, NaN-free random data with ties), and a
// backward is refused.
TEST(Pool, ForwardOnlyMaxPoolGivesTheSameOutputs) {
  ops::Attrs a = poolAttrs({"", 12, 13, 3, 3, 2, 2, {1, 1, 1, 1}, false, false}, false);
  Tensor x = test::randomTensor({2, 3, 12, 13}, 17);
  for (int64_t i = 0; i < x.numel(); i += 7) x.f32()[i] = 0.25f;  // ties
  auto full = ops::OpRegistry::get().create("MaxPool", a, "full");
  auto fwd = ops::OpRegistry::get().create("MaxPool", a, "fwd");
  fwd->setBackwardNeeded(false);
  std::vector<Tensor*> in{&x};
  Tensor y1, y2;
  std::vector<Tensor*> o1{&y1}, o2{&y2};
  ops::RunContext ctx;
  full->forward(in, o1, ctx);
  fwd->forward(in, o2, ctx);
  ASSERT_EQ(y1.shape(), y2.shape());
  EXPECT_EQ(std::memcmp(y1.raw(), y2.raw(), y1.bytes()), 0);
  Tensor dy(y2.shape()), dx;
  dy.fill(1.f);
  std::vector<const Tensor*> dout{&dy};
  std::vector<Tensor*> din{&dx};
  EXPECT_THROW(fwd->backward(in, o2, dout, din, ctx), Error);
}

TEST(Pool, GlobalAveragePool) {
  Tensor x = test::randomTensor({2, 3, 3, 4}, 5);
  auto op = ops::OpRegistry::get().create("GlobalAveragePool", ops::Attrs{}, "gap");
  std::vector<Tensor> in{x};
  auto y = test::runForward(*op, in, 1, true)[0];
  ASSERT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
  for (int64_t p = 0; p < 6; ++p) {
    double s = 0;
    for (int64_t i = 0; i < 12; ++i) s += x.f32()[p * 12 + i];
    EXPECT_NEAR(y.f32()[p], s / 12, 1e-5);
  }
  test::gradCheck("GlobalAveragePool", ops::Attrs{}, {x}, 1);
}

// The planes' sums in blocks of 8 (and the rest one by one), each in order
// from 0 exactly as one float sum plane by plane; the same bits on any
// thread count (planes over the threads: 8 x 300 planes of 2401 values).
TEST(Pool, GlobalAveragePoolSumsEachPlaneInOrder) {
  for (const Shape& shape : {Shape{2, 7, 3, 5}, Shape{8, 300, 49, 49}}) {
    Tensor x = test::randomTensor(shape, 6);
    auto op = ops::OpRegistry::get().create("GlobalAveragePool", ops::Attrs{}, "gap");
    std::vector<Tensor> in{x};
    auto y = test::runForward(*op, in, 1, true)[0];
    const int64_t planes = shape[0] * shape[1], S = shape[2] * shape[3];
    for (int64_t p = 0; p < planes; ++p) {
      float s = 0.f;
      for (int64_t i = 0; i < S; ++i) s += x.f32()[p * S + i];
      const float want = s / static_cast<float>(S);
      ASSERT_EQ(std::memcmp(&y.f32()[p], &want, sizeof(float)), 0) << p;
    }
    test::expectSameBitsOnThreads("GlobalAveragePool", ops::Attrs{}, {x}, {true});
  }
}

TEST(Pool, RejectsNon2d) {
  ops::Attrs a;
  a.set("kernel_shape", std::vector<int64_t>{2});
  EXPECT_THROW(ops::OpRegistry::get().create("MaxPool", a, "pool1d"), ModelError);
  ops::Attrs b;
  b.set("kernel_shape", std::vector<int64_t>{2, 2});
  auto op = ops::OpRegistry::get().create("AveragePool", b, "pool3d");
  std::vector<Tensor> in{Tensor({1, 1, 4, 4, 4})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ModelError);
}

}  // namespace
}  // namespace slim
