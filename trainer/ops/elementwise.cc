// Binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div (float32
// with backward, int64 forward only for shape arithmetic) and variadic Sum.
// Each op caches its BroadcastPlan, so the steady state does not allocate.
#include <algorithm>
#include <cmath>
#include <vector>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"

namespace slim::ops {
namespace {

enum class BinKind { kAdd, kSub, kMul, kDiv };

template <class T>
void applyKind(BinKind k, const BroadcastPlan& p, const T* a, const T* b, T* y) {
  switch (k) {
    case BinKind::kAdd: broadcastApply(p, a, b, y, [](T x, T z) { return x + z; }); break;
    case BinKind::kSub: broadcastApply(p, a, b, y, [](T x, T z) { return x - z; }); break;
    case BinKind::kMul: broadcastApply(p, a, b, y, [](T x, T z) { return x * z; }); break;
    case BinKind::kDiv: broadcastApply(p, a, b, y, [](T x, T z) { return x / z; }); break;
  }
}

class BinaryOp : public Op {
 public:
  explicit BinaryOp(BinKind k) : kind_(k) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    requireTwoInputsOfOneDtype(in, label);
    if (alias_ >= 0) {  // the producer of that operand added the other (fuseOutputBias)
      *out[0] = *in[static_cast<size_t>(alias_)];
      return;
    }
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (!plan_.matches(a.shape(), b.shape())) plan_.init(a.shape(), b.shape());
    out[0]->resize(plan_.outShape(), a.dtype());
    if (a.dtype() == DType::kF32) {
      applyKind<float>(kind_, plan_, a.f32(), b.f32(), out[0]->f32());
    } else if (a.dtype() == DType::kI64) {
      if (kind_ == BinKind::kDiv) {
        const int64_t* bp = b.data<int64_t>();
        for (int64_t i = 0; i < b.numel(); ++i)
          SLIM_ENFORCE(bp[i] != 0, label, ": integer division by zero");
      }
      applyKind<int64_t>(kind_, plan_, a.data<int64_t>(), b.data<int64_t>(),
                         out[0]->data<int64_t>());
    } else {
      SLIM_THROW(ModelError, label, ": unsupported dtype ", dtypeName(a.dtype()));
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext& ctx) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    SLIM_ENFORCE(a.dtype() == DType::kF32, label, ": backward needs float32");
    if (!plan_.matches(a.shape(), b.shape())) plan_.init(a.shape(), b.shape());
    for (int w = 0; w < 2; ++w) {
      if (din.size() <= static_cast<size_t>(w) || !din[w]) continue;
      Tensor& d = *din[w];
      d.resize(in[w]->shape());
      if (!dout[0]) {
        d.zero();
        continue;
      }
      // An operand backward does not read may be shape-only
      // (backwardReadsInput): its formula ignores the values, so any buffer
      // of at least its size serves, and g's is (the output's, the
      // broadcast of both).
      const float* g = dout[0]->f32();
      const float* ap = a.defined() ? a.f32() : g;
      const float* bp = b.defined() ? b.f32() : g;
      float* dp = d.f32();
      if (rankReduced(static_cast<size_t>(w))) {
        // A weight (bias, norm scale) repeated over the batch: exact sum.
        exactGrad(w, ap, bp, g, ctx, dp);
        continue;
      }
      switch (kind_) {
        case BinKind::kAdd:
          plan_.reduceTo(w, g, dp);
          break;
        case BinKind::kSub:
          if (w == 0) {
            plan_.reduceTo(0, g, dp);
          } else {
            broadcastGrad(plan_, 1, ap, bp, g, dp,
                          [](float gv, float, float) { return -gv; });
          }
          break;
        case BinKind::kMul:
          if (w == 0) {
            broadcastGrad(plan_, 0, ap, bp, g, dp,
                          [](float gv, float, float z) { return gv * z; });
          } else {
            broadcastGrad(plan_, 1, ap, bp, g, dp,
                          [](float gv, float x, float) { return gv * x; });
          }
          break;
        case BinKind::kDiv:
          if (w == 0) {
            broadcastGrad(plan_, 0, ap, bp, g, dp,
                          [](float gv, float, float z) { return gv / z; });
          } else {
            broadcastGrad(plan_, 1, ap, bp, g, dp,
                          [](float gv, float x, float z) { return -gv * x / (z * z); });
          }
          break;
      }
    }
  }

  // Either operand may be a weight whose gradient sums over the batch.
  bool reducesGradOverRanks(int) const override { return true; }
  // Add and Sub read no operand; a product or quotient reads the other
  // operand for each gradient, and Div's divisor for both.
  bool backwardReadsInput(size_t i, const std::vector<bool>& grads) const override {
    const bool other = grads.size() > 1 - i && grads[1 - i];
    switch (kind_) {
      case BinKind::kAdd:
      case BinKind::kSub: return false;
      case BinKind::kMul: return other;
      case BinKind::kDiv: return i == 1 ? other || (grads.size() > 1 && grads[1]) : other;
    }
    return true;
  }
  bool backwardReadsOutput(size_t) const override { return false; }
  bool forwardAsAlias(bool on, size_t input) override {
    alias_ = on && kind_ == BinKind::kAdd && input < 2 ? static_cast<int>(input) : -1;
    return alias_ >= 0;
  }

 private:
  // The gradient of operand w, summed exactly over the batch (exact_sum.h):
  // by groups of samples where it can (groupGrad), else every term in fixed
  // point.
  void exactGrad(int w, const float* a, const float* b, const float* g, RunContext& ctx,
                 float* dp) {
    auto run = [&](auto f) {
      if (groupGrad(w, a, b, g, f, ctx, dp)) return;
      sum_.setShift(gradShift(static_cast<size_t>(w), ctx));
      broadcastGradExact(plan_, w, a, b, g, sum_, f);
      finishSum(static_cast<size_t>(w), sum_, ctx, dp);
    };
    switch (kind_) {
      case BinKind::kAdd: run([](float gv, float, float) { return gv; }); break;
      case BinKind::kSub:
        if (w == 0) run([](float gv, float, float) { return gv; });
        else run([](float gv, float, float) { return -gv; });
        break;
      case BinKind::kMul:
        if (w == 0) run([](float gv, float, float z) { return gv * z; });
        else run([](float gv, float x, float) { return gv * x; });
        break;
      case BinKind::kDiv:
        if (w == 0) run([](float gv, float, float z) { return gv / z; });
        else run([](float gv, float x, float z) { return -gv * x / (z * z); });
        break;
    }
  }

  // Operand w repeated along the rows of the output ([..., k] against the
  // other operand's [rows, k]: a bias, a norm's scale) whose samples are
  // known (SampleGroups): float sums down each column over a group of
  // kSumChunk samples' rows in order, the groups added in fixed point
  // (finishPartials), rank-exact like MatMul's weight gradient, where a
  // fixed-point term per element costs several ns. False for other shapes.
  template <class F>
  bool groupGrad(int w, const float* a, const float* b, const float* g, F f, RunContext& ctx,
                 float* dp) {
    const Shape &ws = plan_.operandShape(w), &out = plan_.outShape();
    if (plan_.operandShape(1 - w) != out) return false;
    size_t lead = 0;  // ws's leading ones
    while (lead < ws.size() && ws[lead] == 1) ++lead;
    const size_t tail = ws.size() - lead;
    if (tail > out.size() || !std::equal(ws.begin() + lead, ws.end(), out.end() - tail))
      return false;
    const int64_t k = numelOf(ws), rows = k > 0 ? plan_.numel() / k : 0;
    const rank_reduction::SampleLayout l = inputSamples(static_cast<size_t>(1 - w));
    if (rows == 0 || !rank_reduction::SampleGroups::fits(l, k, rows)) return false;
    const rank_reduction::SampleGroups groups(l, k);
    partials_.resize(static_cast<size_t>(groups.count * k));
    const float* full = w == 0 ? b : a;  // the other operand, [rows, k]
    const float* rep = w == 0 ? a : b;   // operand w, [k]
    groupColumnSums(groups, k, partials_.data(), [&](int64_t r, int64_t j) {
      return w == 0 ? f(g[r * k + j], rep[j], full[r * k + j])
                    : f(g[r * k + j], full[r * k + j], rep[j]);
    });
    finishPartials(static_cast<size_t>(w), partials_.data(), groups.count, k, sum_, ctx, dp);
    return true;
  }

  BinKind kind_;
  int alias_ = -1;  // forwardAsAlias: the operand output 0 shares
  BroadcastPlan plan_;
  rank_reduction::FixedSum sum_;  // exactGrad's sums
  std::vector<float> partials_;   // groupGrad's, per group of samples
};

// Sum of any number of inputs (float32), broadcast to a common shape.
class SumOp : public Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs at least one input");
    Shape s = in[0]->shape();
    for (size_t k = 1; k < in.size(); ++k) s = broadcastShape(s, in[k]->shape());
    plans_.resize(in.size());
    Tensor& y = *out[0];
    y.resize(s);
    float* yp = y.f32();
    for (size_t k = 0; k < in.size(); ++k) {
      if (!plans_[k].matches(s, in[k]->shape())) plans_[k].init(s, in[k]->shape());
      if (k == 0) {
        broadcastApply<float>(plans_[k], yp, in[k]->f32(), yp,
                              [](float, float z) { return z; });
      } else {
        broadcastApply<float>(plans_[k], yp, in[k]->f32(), yp,
                              [](float x, float z) { return x + z; });
      }
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    for (size_t k = 0; k < din.size(); ++k) {
      if (!din[k]) continue;
      din[k]->resize(in[k]->shape());
      if (!dout[0]) {
        din[k]->zero();
        continue;
      }
      plans_[k].reduceTo(1, dout[0]->f32(), din[k]->f32());
    }
  }
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  std::vector<BroadcastPlan> plans_;  // plans_[k]: (output shape, input k)
};

}  // namespace

void registerElementwiseOps(OpRegistry& r) {
  r.add("Add", [](const Attrs&) { return std::make_unique<BinaryOp>(BinKind::kAdd); });
  r.add("Sub", [](const Attrs&) { return std::make_unique<BinaryOp>(BinKind::kSub); });
  r.add("Mul", [](const Attrs&) { return std::make_unique<BinaryOp>(BinKind::kMul); });
  r.add("Div", [](const Attrs&) { return std::make_unique<BinaryOp>(BinKind::kDiv); });
  r.add("Sum", [](const Attrs&) { return std::make_unique<SumOp>(); });
}

}  // namespace slim::ops
