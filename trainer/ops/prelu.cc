// PRelu: y = x < 0 ? slope * x : x, slope broadcast to X (unidirectional,
// e.g. [C, 1, 1] against [N, C, H, W]). dslope sums over the batch, so it is
// made rank-exact (exact_sum.h): one float partial per sample (its elements
// in a fixed order), the partials added in fixed point (Op::finishPartials).
#include <vector>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

class PReluOp : public Op {
 public:
  bool reducesGradOverRanks(int i) const override { return i == 1; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const float* x = in[0]->f32();
    const float* slope = in[1]->f32();
    out[0]->resize(in[0]->shape());
    float* y = out[0]->f32();
    // Per sample n: x_n, y_n (sample shape), slope (slope shape, broadcast).
    detail::parallelFor(N_, [&](int64_t n) {
      broadcastApply<float>(plan_, x + n * S_, slope, y + n * S_,
                            [](float a, float s) { return a < 0.f ? s * a : a; });
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* dslope = din.size() > 1 ? din[1] : nullptr;
    if (dx) dx->resize(in[0]->shape());
    if (dslope) dslope->resize(in[1]->shape());
    if (!dout[0]) {
      for (Tensor* t : {dx, dslope})
        if (t) t->zero();
      return;
    }
    const float* x = in[0]->f32();
    const float* slope = in[1]->f32();
    const float* g = dout[0]->f32();
    if (dx) {
      float* dxp = dx->f32();
      detail::parallelFor(N_, [&](int64_t n) {
        const float* xn = x + n * S_;
        const float* gn = g + n * S_;
        float* dn = dxp + n * S_;
        plan_.forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t len, int64_t sa,
                             int64_t sb) {
          for (int64_t i = 0; i < len; ++i)
            dn[o + i] = xn[ia + i * sa] < 0.f ? slope[ib + i * sb] * gn[o + i] : gn[o + i];
        });
      });
    }
    if (!dslope) return;
    const int64_t K = in[1]->numel();
    if (N_ == 0 || K == 0) {
      dslope->zero();
      return;
    }
    // partial_: (N, K), sample n's sum of g * x over x < 0.
    partial_.resize(static_cast<size_t>(N_ * K));
    detail::parallelFor(N_, [&](int64_t n) {
      broadcastGrad(plan_, 1, x + n * S_, slope, g + n * S_, partial_.data() + n * K,
                    [](float gv, float a, float) { return a < 0.f ? gv * a : 0.f; });
    });
    finishPartials(1, partial_.data(), N_, K, sum_, ctx, dslope->f32());
  }

 private:
  // Splits X into N samples of S elements unless slope varies over axis 0.
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs X and slope");
    const Tensor& x = *in[0];
    requireF32(x, label);
    requireF32(*in[1], label, "slope");
    Shape sample = x.shape(), sl = in[1]->shape();
    if (sl.size() > sample.size())
      SLIM_THROW(ShapeError, label, ": slope ", shapeStr(sl), " has a higher rank than X ",
                 shapeStr(sample));
    N_ = 1;
    if (x.ndim() >= 2 && (sl.size() < sample.size() || sl[0] == 1)) {
      N_ = x.dim(0);
      sample.erase(sample.begin());
      if (sl.size() > sample.size()) sl.erase(sl.begin());
    }
    S_ = numelOf(sample);
    if (!plan_.matches(sample, sl)) plan_.init(sample, sl);
    if (plan_.outShape() != sample)
      SLIM_THROW(ShapeError, label, ": slope ", shapeStr(in[1]->shape()),
                 " does not broadcast to X ", shapeStr(x.shape()));
  }

  int64_t N_ = 1, S_ = 0;
  BroadcastPlan plan_;           // (sample shape, slope shape)
  std::vector<float> partial_;   // per-sample dslope partials
  rank_reduction::FixedSum sum_;
};

}  // namespace

void registerPReluOps(OpRegistry& r) {
  r.add("PRelu", [](const Attrs&) { return std::make_unique<PReluOp>(); });
}

}  // namespace slim::ops
