// LayerNormalization (opset 17: axis, epsilon; scale, optional bias; optional
// Mean and InvStdDev outputs) and InstanceNormalization. Statistics are per
// row (LayerNorm: the axes from `axis` on; InstanceNorm: one (image, channel)
// plane), so forward and dx never mix samples. dScale/dBias do: they are sums
// over the batch, made rank-exact (exact_sum.h) as BatchNormalization's are —
// LayerNorm keeps one float partial per sample (its rows summed in a fixed
// order) and adds the partials in fixed point (Op::finishPartials);
// InstanceNorm adds its per-(image, channel) sums with sumOverBatch. Either
// way N ranks with batch B give the bits of one rank with batch N*B.
#include <cmath>
#include <vector>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

// Shapes the gradients of (X, Scale, Bias) a normalisation backward fills;
// with no incoming gradient they are zeroed and false is returned.
bool prepareGrads(const std::vector<Tensor*>& in, const std::vector<const Tensor*>& dout,
                  const std::vector<Tensor*>& din, bool has_bias, Tensor** dx,
                  Tensor** dscale, Tensor** dbias) {
  *dx = din.size() > 0 ? din[0] : nullptr;
  *dscale = din.size() > 1 ? din[1] : nullptr;
  *dbias = din.size() > 2 && has_bias ? din[2] : nullptr;
  if (*dx) (*dx)->resize(in[0]->shape());
  if (*dscale) (*dscale)->resize(in[1]->shape());
  if (*dbias) (*dbias)->resize(in[2]->shape());
  if (dout[0]) return true;
  for (Tensor* t : {*dx, *dscale, *dbias})
    if (t) t->zero();
  return false;
}

// Feature columns per task of the per-sample parameter-gradient partials.
constexpr int64_t kColBlock = 256;

// A normalisation with a scale (input 1) and bias (input 2) per channel,
// whose gradients are batch reductions the op sums over ranks itself.
class ScaleBiasNormOp : public Op {
 public:
  bool reducesGradOverRanks(int i) const override { return i == 1 || i == 2; }
};

class LayerNormOp : public ScaleBiasNormOp {
 public:
  explicit LayerNormOp(const Attrs& a)
      : axis_(a.getInt("axis", -1)), eps_(a.getFloat("epsilon", 1e-5f)) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const float* x = in[0]->f32();
    const float* scale = in[1]->f32();
    const float* bias = in.size() > 2 && in[2] ? in[2]->f32() : nullptr;
    Tensor& y = *out[0];
    y.resize(in[0]->shape());
    float* yp = y.f32();
    // x, y: (R, D); mean_, invstd_: (R)
    const int64_t D = D_;
    mean_.resize(static_cast<size_t>(R_));
    invstd_.resize(static_cast<size_t>(R_));
    detail::parallelFor(R_, [&](int64_t r) {
      const float* __restrict xr = x + r * D;
      float* __restrict yr = yp + r * D;
      const float m = detail::sumF(xr, D) / static_cast<float>(D);
      const float var = detail::sumSqDevF(xr, m, D) / static_cast<float>(D);
      const float is = 1.f / std::sqrt(var + eps_);
      mean_[r] = m;
      invstd_[r] = is;
      for (int64_t d = 0; d < D; ++d) {
        const float v = (xr[d] - m) * is * scale[d];
        yr[d] = bias ? v + bias[d] : v;
      }
    });
    // Optional outputs: X's shape with the normalised axes set to 1.
    Shape ss = in[0]->shape();
    for (size_t d = static_cast<size_t>(axis_n_); d < ss.size(); ++d) ss[d] = 1;
    if (out.size() > 1 && out[1]) {
      out[1]->resize(ss);
      std::copy(mean_.begin(), mean_.end(), out[1]->f32());
    }
    if (out.size() > 2 && out[2]) {
      out[2]->resize(ss);
      std::copy(invstd_.begin(), invstd_.end(), out[2]->f32());
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    SLIM_ENFORCE(static_cast<int64_t>(mean_.size()) == R_, label,
                 ": backward without a matching forward");
    if ((dout.size() > 1 && dout[1]) || (dout.size() > 2 && dout[2]))
      SLIM_THROW(ModelError, label, ": gradients through the Mean/InvStdDev outputs are "
                 "not supported");
    Tensor *dx, *dscale, *dbias;
    if (!prepareGrads(in, dout, din, in.size() > 2 && in[2], &dx, &dscale, &dbias)) return;
    const float* x = in[0]->f32();
    const float* scale = in[1]->f32();
    const float* dy = dout[0]->f32();
    const int64_t D = D_, R = R_;
    const float* mean = mean_.data();
    const float* invstd = invstd_.data();
    if (dx) {
      // dx = invstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * scale.
      float* dxp = dx->f32();
      detail::parallelFor(R, [&](int64_t r) {
        const float* __restrict xr = x + r * D;
        const float* __restrict dyr = dy + r * D;
        float* __restrict dxr = dxp + r * D;
        const float m = mean[r], is = invstd[r];
        float sg = 0.f, sgx = 0.f;
        for (int64_t d = 0; d < D; ++d) {
          const float g = dyr[d] * scale[d];
          sg += g;
          sgx += g * (xr[d] - m) * is;
        }
        const float mg = sg / static_cast<float>(D), mgx = sgx / static_cast<float>(D);
        for (int64_t d = 0; d < D; ++d)
          dxr[d] = is * (dyr[d] * scale[d] - mg - (xr[d] - m) * is * mgx);
      });
    }
    if (!dscale && !dbias) return;
    // Per-sample partials (N, D) of sum(dy * xhat) and sum(dy), each over the
    // sample's rows in order; tasks are (sample, column block).
    const int64_t N = samples_;
    if (N == 0 || D == 0) {
      for (Tensor* t : {dscale, dbias})
        if (t) t->zero();
      return;
    }
    const int64_t rows = R / N;
    const int64_t blocks = (D + kColBlock - 1) / kColBlock;
    pscale_.assign(static_cast<size_t>(N * D), 0.f);
    pbias_.assign(static_cast<size_t>(N * D), 0.f);
    detail::parallelFor(N * blocks, [&](int64_t t) {
      const int64_t n = t / blocks, d0 = (t % blocks) * kColBlock;
      const int64_t d1 = std::min(D, d0 + kColBlock);
      float* __restrict ps = pscale_.data() + n * D;
      float* __restrict pb = pbias_.data() + n * D;
      for (int64_t r = n * rows; r < (n + 1) * rows; ++r) {
        const float m = mean[r], is = invstd[r];
        const float* xr = x + r * D;
        const float* dyr = dy + r * D;
        for (int64_t d = d0; d < d1; ++d) {
          ps[d] += dyr[d] * ((xr[d] - m) * is);
          pb[d] += dyr[d];
        }
      }
    });
    if (dscale) finishPartials(1, pscale_.data(), N, D, ssum_, ctx, dscale->f32());
    if (dbias) finishPartials(2, pbias_.data(), N, D, bsum_, ctx, dbias->f32());
  }

 private:
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs X and Scale");
    const Tensor& x = *in[0];
    requireF32(x, label);
    requireF32(*in[1], label, "Scale");
    axis_n_ = normalizeAxis(axis_, x.ndim(), label.c_str());
    R_ = 1;
    for (int d = 0; d < axis_n_; ++d) R_ *= x.dim(d);
    D_ = R_ == 0 ? 0 : x.numel() / R_;
    // Parameter gradients are summed per sample (axis 0) when axis > 0.
    samples_ = axis_n_ > 0 ? x.dim(0) : 1;
    if (in[1]->numel() != D_ || (in.size() > 2 && in[2] && in[2]->numel() != D_))
      SLIM_THROW(ModelError, label, ": Scale/B broadcast to the normalised shape is not "
                 "supported (need ", D_, " elements; X ", shapeStr(x.shape()), ", axis ",
                 axis_, ")");
    if (in.size() > 2 && in[2]) requireF32(*in[2], label, "B");
  }

  int64_t axis_;
  float eps_;
  int axis_n_ = 0;
  int64_t R_ = 0, D_ = 0, samples_ = 1;
  std::vector<float> mean_, invstd_;  // (R) of the last forward
  std::vector<float> pscale_, pbias_; // (N, D) per-sample gradient partials
  rank_reduction::FixedSum ssum_, bsum_;
};

class InstanceNormOp : public ScaleBiasNormOp {
 public:
  explicit InstanceNormOp(const Attrs& a) : eps_(a.getFloat("epsilon", 1e-5f)) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const float* x = in[0]->f32();
    const float* scale = in[1]->f32();
    const float* bias = in[2]->f32();
    Tensor& y = *out[0];
    y.resize(in[0]->shape());
    float* yp = y.f32();
    // x, y: (N, C, S); mean_, invstd_: (N * C)
    const int64_t C = C_, S = S_;
    mean_.resize(static_cast<size_t>(N_ * C));
    invstd_.resize(static_cast<size_t>(N_ * C));
    detail::parallelFor(N_ * C, [&](int64_t r) {
      const float* __restrict xr = x + r * S;
      float* __restrict yr = yp + r * S;
      const float m = detail::sumF(xr, S) / static_cast<float>(S);
      const float var = detail::sumSqDevF(xr, m, S) / static_cast<float>(S);
      const float is = 1.f / std::sqrt(var + eps_);
      mean_[r] = m;
      invstd_[r] = is;
      const float a = scale[r % C] * is, b = bias[r % C];
      for (int64_t s = 0; s < S; ++s) yr[s] = (xr[s] - m) * a + b;
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    SLIM_ENFORCE(static_cast<int64_t>(mean_.size()) == N_ * C_, label,
                 ": backward without a matching forward");
    Tensor *dx, *dscale, *dbias;
    if (!prepareGrads(in, dout, din, true, &dx, &dscale, &dbias)) return;
    const float* x = in[0]->f32();
    const float* scale = in[1]->f32();
    const float* dy = dout[0]->f32();
    const int64_t N = N_, C = C_, S = S_;
    // Per (image, channel): sum(dy) and sum(dy * xhat), float in a fixed order.
    rows_.resize(static_cast<size_t>(2 * N * C));
    float* rs = rows_.data();
    detail::parallelFor(N * C, [&](int64_t r) {
      float s0, s1;
      detail::sumDyDyx(dy + r * S, x + r * S, mean_[r], S, s0, s1);
      rs[2 * r] = s0;
      rs[2 * r + 1] = s1 * invstd_[r];
    });
    // dScale/dB: the rows added over the batch in fixed point.
    if (dscale) {
      sum_.setShift(gradShift(1, ctx));
      rank_reduction::sumOverBatch<1>(
          N, C, sum_, [&](int64_t n, int64_t c, float* v) { v[0] = rs[2 * (n * C + c) + 1]; });
      finishSum(1, sum_, ctx, dscale->f32());
    }
    if (dbias) {
      sum_.setShift(gradShift(2, ctx));
      rank_reduction::sumOverBatch<1>(
          N, C, sum_, [&](int64_t n, int64_t c, float* v) { v[0] = rs[2 * (n * C + c)]; });
      finishSum(2, sum_, ctx, dbias->f32());
    }
    if (!dx) return;
    // dx = scale * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
    float* dxp = dx->f32();
    detail::parallelFor(N * C, [&](int64_t r) {
      const float m = mean_[r], is = invstd_[r], a = scale[r % C] * is;
      const float mdy = rs[2 * r] / static_cast<float>(S);
      const float mdyx = rs[2 * r + 1] / static_cast<float>(S);
      detail::normInputGradRow(dy + r * S, x + r * S, dxp + r * S, S, a, mdy, m, is, mdyx);
    });
  }

 private:
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 3 && in[0] && in[1] && in[2], label,
                 ": needs inputs input, scale, B");
    const Tensor& x = *in[0];
    requireF32(x, label);
    if (x.ndim() < 3)
      SLIM_THROW(ShapeError, label, ": input must be [N, C, D1, ...], got ", shapeStr(x.shape()));
    N_ = x.dim(0);
    C_ = x.dim(1);
    S_ = N_ * C_ == 0 ? 0 : x.numel() / (N_ * C_);
    for (int i = 1; i < 3; ++i) {
      requireF32(*in[i], label, i == 1 ? "scale" : "B");
      if (in[i]->numel() != C_)
        SLIM_THROW(ShapeError, label, ": input ", i, " has shape ", shapeStr(in[i]->shape()),
                   ", expected [", C_, "]");
    }
  }

  float eps_;
  int64_t N_ = 0, C_ = 0, S_ = 0;
  std::vector<float> mean_, invstd_;  // (N * C) of the last forward
  std::vector<float> rows_;           // (N * C, 2) backward row sums
  rank_reduction::FixedSum sum_;
};

}  // namespace

void registerNormExtraOps(OpRegistry& r) {
  r.add("LayerNormalization", [](const Attrs& a) { return std::make_unique<LayerNormOp>(a); });
  r.add("InstanceNormalization",
        [](const Attrs& a) { return std::make_unique<InstanceNormOp>(a); });
}

}  // namespace slim::ops
