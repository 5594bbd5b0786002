// Pact: learnable symmetric clipping y = clip(x, -alpha, alpha) before the
// activation quantizer (act-reference §4.6). Identity at inference, as ACT's
// eval/export program has no PACT.
#include <algorithm>

#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {
namespace {

class PactOp : public ops::Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext& ctx) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs x and alpha");
    SLIM_ENFORCE(in[1]->numel() == 1 && in[1]->dtype() == DType::kF32, label,
                 ": alpha must be one float32 value, got ", shapeStr(in[1]->shape()));
    const Tensor& x = *in[0];
    out[0]->resize(x.shape());
    clipped_ = ctx.training;
    if (!clipped_) {
      out[0]->copyFrom(x);
      return;
    }
    const float a = in[1]->f32()[0];
    const float* xp = x.f32();
    float* yp = out[0]->f32();
    for (int64_t i = 0; i < x.numel(); ++i) yp[i] = std::min(a, std::max(-a, xp[i]));
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext& ctx) override {
    const Tensor& x = *in[0];
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* da = din.size() > 1 ? din[1] : nullptr;
    if (dx) dx->resize(x.shape());
    if (da) da->resize(in[1]->shape());
    if (!dout[0]) {
      if (dx) dx->zero();
      if (da) da->zero();
      return;
    }
    const float* g = dout[0]->f32();
    // x: (n); dx = g inside [-a, a]; da = sum(g | x > a) - sum(g | x < -a),
    // added per element in fixed point (exact_sum.h: any batch split).
    const float a = in[1]->f32()[0];
    const float* xp = x.f32();
    ops::FixedSum dalpha;
    dalpha.reset(1);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const bool above = clipped_ && xp[i] > a, below = clipped_ && xp[i] < -a;
      if (dx) dx->f32()[i] = (above || below) ? 0.f : g[i];
      if (above) dalpha.add(0, g[i]);
      if (below) dalpha.add(0, -g[i]);
    }
    if (da) finishSum(1, dalpha, ctx, da->f32());
  }

  bool reducesGradOverRanks(int i) const override { return i == 1; }

 private:
  bool clipped_ = true;  // mode of the last forward, so backward matches it
};

}  // namespace

namespace detail {
void registerPactOp(ops::OpRegistry& r) {
  r.add(kPactOp, [](const ops::Attrs&) { return std::make_unique<PactOp>(); });
}
}  // namespace detail

}  // namespace slim::compress
