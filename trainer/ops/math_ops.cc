// Math ops with backward: pointwise Sqrt, Exp, Log, Erf, Neg, Abs,
// Reciprocal; Pow with broadcasting (gradient w.r.t. base and exponent);
// ReduceMean/ReduceSum (axes as attribute or, from opset 13/18, an input).
#include <cmath>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/fast_math.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

// F provides fwd(x) and bwd(x, y, g). Element ranges on the threads: each
// element is computed alone, so the bits do not depend on the thread count.
template <class F>
class UnaryOp : public Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    out[0]->resize(x.shape());
    const float* xp = x.f32();
    float* yp = out[0]->f32();
    detail::parallelRange(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = F::fwd(xp[i]);
    });
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    // What F::bwd ignores may be shape-only (backwardReadsInput/Output):
    // g's buffer, of the same size, stands in.
    const float* g = dout[0]->f32();
    const float* xp = F::kReadsX ? in[0]->f32() : g;
    const float* yp = F::kReadsY ? out[0]->f32() : g;
    float* dx = din[0]->f32();
    detail::parallelRange(in[0]->numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] = F::bwd(xp[i], yp[i], g[i]);
    });
  }
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return F::kReadsX; }
  bool backwardReadsOutput(size_t) const override { return F::kReadsY; }

 private:
  static constexpr int64_t kGrain = 1 << 15;  // elements per thread at least
};

constexpr float kTwoOverSqrtPi = 1.1283791670955126f;

struct SqrtF {
  static constexpr bool kReadsX = false, kReadsY = true;
  static float fwd(float x) { return std::sqrt(x); }
  static float bwd(float, float y, float g) { return g * 0.5f / y; }
};
struct ExpF {
  static constexpr bool kReadsX = false, kReadsY = true;
  static float fwd(float x) { return std::exp(x); }
  static float bwd(float, float y, float g) { return g * y; }
};
struct LogF {
  static constexpr bool kReadsX = true, kReadsY = false;
  static float fwd(float x) { return std::log(x); }
  static float bwd(float x, float, float g) { return g / x; }
};
struct ErfF {  // vectorised (fast_math.h): < 1 ulp forward
  static constexpr bool kReadsX = true, kReadsY = false;
  static float fwd(float x) { return fastErf(x); }
  static float bwd(float x, float, float g) { return fastExp(-x * x) * kTwoOverSqrtPi * g; }
};
struct NegF {
  static constexpr bool kReadsX = false, kReadsY = false;
  static float fwd(float x) { return -x; }
  static float bwd(float, float, float g) { return -g; }
};
struct AbsF {
  static constexpr bool kReadsX = true, kReadsY = false;
  static float fwd(float x) { return std::fabs(x); }
  static float bwd(float x, float, float g) { return x > 0.f ? g : (x < 0.f ? -g : 0.f); }
};
struct ReciprocalF {
  static constexpr bool kReadsX = false, kReadsY = true;
  static float fwd(float x) { return 1.f / x; }
  static float bwd(float, float y, float g) { return -g * y * y; }
};

// Pow(X, Y): float base and exponent, broadcast. dX = g*y*x^(y-1);
// dY = g*x^y*ln(x), taken as 0 where x <= 0 (ln undefined).
class PowOp : public Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs two inputs");
    const Tensor& x = *in[0];
    const Tensor& e = *in[1];
    requireF32(x, label, "base");
    requireF32(e, label, "exponent");
    if (!plan_.matches(x.shape(), e.shape())) plan_.init(x.shape(), e.shape());
    out[0]->resize(plan_.outShape());
    if (e.numel() == 1 && e.f32()[0] == 2.f) {  // common: variance, L2 terms
      broadcastApply<float>(plan_, x.f32(), e.f32(), out[0]->f32(),
                            [](float a, float) { return a * a; });
    } else {
      broadcastApply<float>(
          plan_, x.f32(), e.f32(), out[0]->f32(), [](float a, float b) { return std::pow(a, b); },
          detail::kGrainCostly);
    }
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    for (int w = 0; w < 2; ++w) {
      if (din.size() <= static_cast<size_t>(w) || !din[w]) continue;
      din[w]->resize(in[w]->shape());
      if (!dout[0]) {
        din[w]->zero();
        continue;
      }
      const float* xp = in[0]->f32();
      const float* ep = in[1]->f32();
      if (w == 0 && in[1]->numel() == 1 && ep[0] == 2.f) {
        // x^2 (a layer norm's variance): pow(a, 1) is a itself, NaN and
        // infinities included, so this is the general expression's bits.
        broadcastGrad(
            plan_, 0, xp, ep, dout[0]->f32(), din[0]->f32(),
            [](float g, float a, float b) { return g * b * a; }, detail::kGrainCheap);
      } else if (w == 0) {
        broadcastGrad(
            plan_, 0, xp, ep, dout[0]->f32(), din[0]->f32(),
            [](float g, float a, float b) { return g * b * std::pow(a, b - 1.f); },
            detail::kGrainCostly);
      } else {
        broadcastGrad(
            plan_, 1, xp, ep, dout[0]->f32(), din[1]->f32(),
            [](float g, float a, float b) {
              return a > 0.f ? g * std::pow(a, b) * std::log(a) : 0.f;
            },
            detail::kGrainCostly);
      }
    }
  }

  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  BroadcastPlan plan_;
};

// ReduceSum / ReduceMean. The reduction is a broadcast in reverse: the
// keepdims shape K broadcasts to the input shape X, so forward = reduceTo(K)
// and backward = broadcast of dY over X.
class ReduceOp : public Op {
 public:
  ReduceOp(const Attrs& a, bool mean)
      : mean_(mean),
        keepdims_(a.getInt("keepdims", 1) != 0),
        noop_empty_(a.getInt("noop_with_empty_axes", 0) != 0),
        attr_axes_(a.getInts("axes", {})) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    const int r = x.ndim();
    axes_ = attr_axes_;
    if (in.size() > 1 && in[1]) {
      const int64_t* p = in[1]->data<int64_t>();
      axes_.assign(p, p + in[1]->numel());
    }
    kept_ = x.shape();
    out_shape_.clear();
    if (axes_.empty() && noop_empty_) {
      identity_ = true;
      *out[0] = x;
      return;
    }
    identity_ = false;
    reduced_.assign(r, axes_.empty());
    for (int64_t ax : axes_) reduced_[normalizeAxis(ax, r, label.c_str())] = true;
    for (int d = 0; d < r; ++d) {
      if (reduced_[d]) kept_[d] = 1;
      if (!reduced_[d] || keepdims_) out_shape_.push_back(kept_[d]);
    }
    if (!plan_.matches(x.shape(), kept_)) plan_.init(x.shape(), kept_);
    out[0]->resize(out_shape_);
    float* y = out[0]->f32();
    plan_.reduceTo(1, x.f32(), y);
    if (mean_) {
      const int64_t kn = numelOf(kept_);
      const float s = kn > 0 && x.numel() > 0 ? float(kn) / float(x.numel()) : 0.f;
      for (int64_t i = 0; i < kn; ++i) y[i] *= s;
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    const Tensor& x = *in[0];
    if (identity_) {
      din[0]->copyFrom(*dout[0]);
      return;
    }
    const int64_t kn = numelOf(kept_);
    const float s = mean_ && kn > 0 ? float(kn) / float(x.numel()) : 1.f;
    // out = x (shape X) op g (shape K): only the g operand is read (x may be
    // shape-only; dx's buffer, of x's size, stands in).
    broadcastApply<float>(plan_, x.defined() ? x.f32() : din[0]->f32(), dout[0]->f32(),
                          din[0]->f32(), [s](float, float g) { return g * s; });
  }
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }

  std::vector<int> nonDiffInputs() const override { return {1}; }

 private:
  bool mean_, keepdims_, noop_empty_, identity_ = false;
  std::vector<int64_t> attr_axes_, axes_;
  std::vector<bool> reduced_;
  Shape kept_, out_shape_;
  BroadcastPlan plan_;
};

template <class F>
OpFactory unary() {
  return [](const Attrs&) { return std::make_unique<UnaryOp<F>>(); };
}

}  // namespace

void registerMathOps(OpRegistry& r) {
  r.add("Sqrt", unary<SqrtF>());
  r.add("Exp", unary<ExpF>());
  r.add("Log", unary<LogF>());
  r.add("Erf", unary<ErfF>());
  r.add("Neg", unary<NegF>());
  r.add("Abs", unary<AbsF>());
  r.add("Reciprocal", unary<ReciprocalF>());
  r.add("Pow", [](const Attrs&) { return std::make_unique<PowOp>(); });
  r.add("ReduceSum", [](const Attrs& a) { return std::make_unique<ReduceOp>(a, false); });
  r.add("ReduceMean", [](const Attrs& a) { return std::make_unique<ReduceOp>(a, true); });
}

}  // namespace slim::ops
