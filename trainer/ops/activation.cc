// Pointwise activations with backward: Relu, Clip (also Relu6), LeakyRelu,
// Sigmoid, HardSigmoid, HardSwish, Tanh, Elu. Backward uses the saved input
// x and/or output y of the node; loops are plain so the compiler vectorises.
#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/ops/fast_math.h"
#include "trainer/ops/fused_ops.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

// F provides fwd(x) and bwd(x, y, g) (both inline, stateless beyond params).
template <class F>
class PointwiseOp : public Op {
 public:
  explicit PointwiseOp(F f) : f_(f) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    requireF32(*in[0], label);
    prepare(in);
    if (alias_) {  // the producer applied f already (forwardAsAlias)
      *out[0] = *in[0];
      return;
    }
    const Tensor& x = *in[0];
    out[0]->resize(x.shape());
    const float* xp = x.f32();
    float* yp = out[0]->f32();
    const int64_t n = x.numel();
    const F f = f_;
    detail::parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = f.fwd(xp[i]);
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    // What f.bwd ignores may be shape-only (backwardReadsInput/Output): g's
    // buffer, of the same size, stands in.
    const Tensor& x = *in[0];
    const float* g = dout[0]->f32();
    const float* xp = F::kReadsX ? x.f32() : g;
    const float* yp = F::kReadsY ? out[0]->f32() : g;
    float* dx = din[0]->f32();
    const int64_t n = x.numel();
    const F f = f_;
    detail::parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] = f.bwd(xp[i], yp[i], g[i]);
    });
  }

  std::vector<int> nonDiffInputs() const override { return {1, 2}; }
  // Clip's bounds are read in forward (prepare) only.
  bool backwardReadsInput(size_t i, const std::vector<bool>&) const override {
    return i == 0 && F::kReadsX;
  }
  bool backwardReadsOutput(size_t) const override { return F::kReadsY; }
  bool forwardAsAlias(bool on, size_t input) override {
    alias_ = on && F::kAliasable && input == 0;
    return alias_;
  }

 protected:
  virtual void prepare(const std::vector<Tensor*>&) {}
  static constexpr int64_t kGrain = 1 << 15;  // elements per thread at least
  F f_;
  bool alias_ = false;
};

// kAliasable: bwd(x) masks the same on x and on fwd(x), so the executor may
// have the producer apply fwd and run this op as an alias. kReadsX / kReadsY:
// whether bwd reads x / y (the executor frees what it does not).
struct ReluF {
  static constexpr bool kAliasable = true;
  static constexpr bool kReadsX = true, kReadsY = false;
  float fwd(float x) const { return reluValue(x); }
  float bwd(float x, float, float g) const { return reluGrad(x, g); }
};
struct LeakyReluF {
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = true, kReadsY = false;
  float alpha;
  float fwd(float x) const {
    const float n = alpha * x;  // computed unconditionally: no speculation, so it vectorises
    return x > 0.f ? x : n;
  }
  float bwd(float x, float, float g) const {
    const float n = alpha * g;
    return x > 0.f ? g : n;
  }
};
struct SigmoidF {
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = false, kReadsY = true;
  float fwd(float x) const { return 1.f / (1.f + fastExp(-x)); }
  float bwd(float, float y, float g) const { return g * y * (1.f - y); }
};
struct HardSigmoidF {
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = true, kReadsY = false;
  float alpha, beta;
  float fwd(float x) const { return std::min(1.f, std::max(0.f, alpha * x + beta)); }
  float bwd(float x, float, float g) const {
    const float t = alpha * x + beta, d = g * alpha;
    return (t > 0.f && t < 1.f) ? d : 0.f;
  }
};
struct HardSwishF {  // x * relu6(x + 3) / 6
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = true, kReadsY = false;
  float fwd(float x) const {
    return x * std::min(1.f, std::max(0.f, x * (1.f / 6.f) + 0.5f));
  }
  float bwd(float x, float, float g) const {  // branch-free so it vectorises
    float d = x * (1.f / 3.f) + 0.5f;
    d = x <= -3.f ? 0.f : d;
    d = x >= 3.f ? 1.f : d;
    return g * d;
  }
};
struct TanhF {
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = false, kReadsY = true;
  float fwd(float x) const { return std::tanh(x); }
  float bwd(float, float y, float g) const { return g * (1.f - y * y); }
};
struct EluF {
  static constexpr bool kAliasable = false;
  static constexpr bool kReadsX = true, kReadsY = true;
  float alpha;
  float fwd(float x) const {
    const float n = alpha * (fastExp(x) - 1.f);
    return x > 0.f ? x : n;
  }
  float bwd(float x, float y, float g) const {
    const float n = g * (y + alpha);
    return x > 0.f ? g : n;
  }
};
struct ClipF {
  static constexpr bool kAliasable = true;
  static constexpr bool kReadsX = true, kReadsY = false;
  float lo, hi;
  float fwd(float x) const { return clipValue(x, lo, hi); }
  // The gradient passes strictly inside (lo, hi).
  float bwd(float x, float, float g) const { return clipGrad(x, lo, hi, g); }
};

// Clip: bounds from attributes (opset < 11) or optional scalar inputs 1, 2.
class ClipOp : public PointwiseOp<ClipF> {
 public:
  explicit ClipOp(const Attrs& a)
      : PointwiseOp<ClipF>(ClipF{a.getFloat("min", -std::numeric_limits<float>::infinity()),
                                 a.getFloat("max", std::numeric_limits<float>::infinity())}),
        attr_(f_) {}

  // uint8 (opset 12+): clamps quantized levels, as INT8 QDQ exports do to fold
  // a ReLU/ReLU6 into the activation quantizer. Inference only.
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext& ctx) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    if (in[0]->dtype() != DType::kU8) return PointwiseOp<ClipF>::forward(in, out, ctx);
    auto bound = [&](size_t i, uint8_t dflt) {
      if (in.size() <= i || !in[i]) return dflt;
      SLIM_ENFORCE(in[i]->dtype() == DType::kU8 && in[i]->numel() == 1, label,
                   ": uint8 Clip needs uint8 scalar bounds");
      return in[i]->data<uint8_t>()[0];
    };
    const uint8_t lo = bound(1, 0), hi = bound(2, 255);
    const Tensor& x = *in[0];
    out[0]->resize(x.shape(), DType::kU8);
    const uint8_t* xp = x.data<uint8_t>();
    uint8_t* yp = out[0]->data<uint8_t>();
    for (int64_t i = 0; i < x.numel(); ++i) yp[i] = std::min(hi, std::max(lo, xp[i]));
  }

 protected:
  void prepare(const std::vector<Tensor*>& in) override {
    f_ = attr_;
    if (in.size() > 1 && in[1]) f_.lo = scalarOf(*in[1], "min");
    if (in.size() > 2 && in[2]) f_.hi = scalarOf(*in[2], "max");
  }

 private:
  float scalarOf(const Tensor& t, const char* what) const {
    SLIM_ENFORCE_EQ(t.numel(), 1, label, ": '", what, "' must be a scalar");
    return t.f32()[0];
  }
  ClipF attr_;
};

// y = x * f(x) (SiLU, hard-swish) in one pass where the graph has f and a
// Mul (makeSelfGated). Forward: s = f(x), y = x * s. Backward: the Mul's
// g * s plus f's backward at x of the Mul's g * x, each staged through
// memory before the sum: an add whose operand is a product in the same
// expression may become an FMA (-ffp-contract=fast), which rounds once
// where the two ops round twice. The executor adds x's two contributions;
// a sum of two floats does not depend on their order.
template <class F>
class SelfGatedOp : public Op {
 public:
  explicit SelfGatedOp(F f) : f_(f) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() == 1 && in[0], label, ": fused x * f(x) needs x");
    requireF32(*in[0], label);
    const Tensor& x = *in[0];
    out[0]->resize(x.shape());
    const float* xp = x.f32();
    float* yp = out[0]->f32();
    const F f = f_;
    detail::parallelRange(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = xp[i] * f.fwd(xp[i]);
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    const float* xp = in[0]->f32();
    const float* g = dout[0]->f32();
    float* dx = din[0]->f32();
    const F f = f_;
    detail::parallelRange(in[0]->numel(), kGrain, [&](int64_t b, int64_t e) {
      float s[kBlock], act[kBlock];  // f(x), then f's backward term
      for (int64_t b0 = b; b0 < e; b0 += kBlock) {
        const int64_t n = std::min(e - b0, kBlock);
        const float* xb = xp + b0;
        const float* gb = g + b0;
        float* db = dx + b0;
        for (int64_t i = 0; i < n; ++i) s[i] = f.fwd(xb[i]);
        for (int64_t i = 0; i < n; ++i) db[i] = gb[i] * s[i];
        for (int64_t i = 0; i < n; ++i) act[i] = f.bwd(xb[i], s[i], gb[i] * xb[i]);
        for (int64_t i = 0; i < n; ++i) db[i] = db[i] + act[i];
      }
    });
  }

  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return true; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  static constexpr int64_t kGrain = 1 << 15, kBlock = 512;
  F f_;
};

template <class F>
OpFactory simple(F f) {
  return [f](const Attrs&) { return std::make_unique<PointwiseOp<F>>(f); };
}

}  // namespace

void registerActivationOps(OpRegistry& r) {
  r.add("Relu", simple(ReluF{}));
  r.add("Sigmoid", simple(SigmoidF{}));
  r.add("HardSwish", simple(HardSwishF{}));
  r.add("Tanh", simple(TanhF{}));
  r.add("LeakyRelu", [](const Attrs& a) {
    return std::make_unique<PointwiseOp<LeakyReluF>>(LeakyReluF{a.getFloat("alpha", 0.01f)});
  });
  r.add("HardSigmoid", [](const Attrs& a) {
    return std::make_unique<PointwiseOp<HardSigmoidF>>(
        HardSigmoidF{a.getFloat("alpha", 0.2f), a.getFloat("beta", 0.5f)});
  });
  r.add("Elu", [](const Attrs& a) {
    return std::make_unique<PointwiseOp<EluF>>(EluF{a.getFloat("alpha", 1.f)});
  });
  r.add("Clip", [](const Attrs& a) { return std::make_unique<ClipOp>(a); });
}

std::unique_ptr<Op> makeSelfGated(const std::string& act_type, const Attrs& a,
                                  const std::string& label) {
  std::unique_ptr<Op> op;
  if (act_type == "Sigmoid") op = std::make_unique<SelfGatedOp<SigmoidF>>(SigmoidF{});
  if (act_type == "HardSigmoid")
    op = std::make_unique<SelfGatedOp<HardSigmoidF>>(
        HardSigmoidF{a.getFloat("alpha", 0.2f), a.getFloat("beta", 0.5f)});
  if (op) op->label = label;
  return op;
}

}  // namespace slim::ops
