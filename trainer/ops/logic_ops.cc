// Comparisons and selection with numpy broadcasting, for every dtype:
// Equal, Less, Greater, LessOrEqual, GreaterOrEqual, Not, And, Or, Xor (bool
// is uint8 0/1, as the importer loads it), Where, and variadic Min/Max.
// Where and Min/Max remember, per output element, which input it came from;
// backward routes the gradient there (Min/Max ties: the first input).
#include <cmath>
#include <type_traits>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/dtype_dispatch.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"

namespace slim::ops {
namespace {

using detail::dispatchDType;

enum class Cmp { kEq, kLt, kGt, kLe, kGe, kAnd, kOr, kXor };

template <class T>
uint8_t compare(Cmp c, T a, T b) {
  switch (c) {
    case Cmp::kEq: return a == b;
    case Cmp::kLt: return a < b;
    case Cmp::kGt: return a > b;
    case Cmp::kLe: return a <= b;
    case Cmp::kGe: return a >= b;
    case Cmp::kAnd: return (a != T(0)) && (b != T(0));
    case Cmp::kOr: return (a != T(0)) || (b != T(0));
    case Cmp::kXor: return (a != T(0)) != (b != T(0));
  }
  return 0;
}

// Binary predicate -> bool (uint8) output. And/Or/Xor take bool inputs.
class CompareOp : public Op {
 public:
  explicit CompareOp(Cmp c) : cmp_(c) {}
  bool differentiable() const override { return false; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    requireTwoInputsOfOneDtype(in, label);
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (cmp_ >= Cmp::kAnd)
      SLIM_ENFORCE(a.dtype() == DType::kU8, label, ": inputs must be bool, got ",
                   dtypeName(a.dtype()));
    if (!plan_.matches(a.shape(), b.shape())) plan_.init(a.shape(), b.shape());
    out[0]->resize(plan_.outShape(), DType::kU8);
    uint8_t* y = out[0]->data<uint8_t>();
    const Cmp c = cmp_;
    dispatchDType(a.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* ap = a.data<T>();
      const T* bp = b.data<T>();
      plan_.forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa,
                           int64_t sb) {
        for (int64_t i = 0; i < n; ++i) y[o + i] = compare<T>(c, ap[ia + i * sa], bp[ib + i * sb]);
      });
    });
  }

 private:
  Cmp cmp_;
  BroadcastPlan plan_;
};

class NotOp : public Op {
 public:
  bool differentiable() const override { return false; }
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    SLIM_ENFORCE(x.dtype() == DType::kU8, label, ": input must be bool, got ",
                 dtypeName(x.dtype()));
    out[0]->resize(x.shape(), DType::kU8);
    const uint8_t* xp = x.data<uint8_t>();
    uint8_t* y = out[0]->data<uint8_t>();
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = xp[i] == 0;
  }
};

// Base of ops whose output element o is a copy of an element of input
// from_[o] (first_ + 0, 1, ...), broadcast to a common shape. plans_[k]
// pairs (output shape, input first_ + k); backward sends g[o] to input
// from_[o]'s element that o read.
class SelectOp : public Op {
 public:
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    for (size_t k = 0; k < plans_.size(); ++k) {
      const size_t j = k + first_;
      if (j >= din.size() || !din[j]) continue;
      requireF32(*in[j], label);
      din[j]->resize(in[j]->shape());
      din[j]->zero();
      if (!dout[0]) continue;
      const float* g = dout[0]->f32();
      float* d = din[j]->f32();
      plans_[k].forEachRow([&](int64_t o, int64_t, int64_t ib, int64_t n, int64_t,
                               int64_t sb) {
        for (int64_t i = 0; i < n; ++i)
          if (from_[o + i] == k) d[ib + i * sb] += g[o + i];
      });
    }
  }

 protected:
  // Plans for inputs in[first_..] against output shape `s`.
  void plan(const std::vector<Tensor*>& in, const Shape& s) {
    plans_.resize(in.size() - first_);
    for (size_t k = 0; k < plans_.size(); ++k) {
      const Shape& xs = in[k + first_]->shape();
      if (!plans_[k].matches(s, xs)) plans_[k].init(s, xs);
    }
    from_.resize(static_cast<size_t>(numelOf(s)));
  }

  size_t first_ = 0;
  std::vector<BroadcastPlan> plans_;
  std::vector<uint8_t> from_;
};

// Where(condition, X, Y): X where condition, else Y.
class WhereOp : public SelectOp {
 public:
  WhereOp() { first_ = 1; }
  std::vector<int> nonDiffInputs() const override { return {0}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 3 && in[0] && in[1] && in[2], label,
                 ": needs condition, X and Y");
    const Tensor& c = *in[0];
    SLIM_ENFORCE(c.dtype() == DType::kU8, label, ": condition must be bool, got ",
                 dtypeName(c.dtype()));
    SLIM_ENFORCE(in[1]->dtype() == in[2]->dtype(), label, ": X and Y dtypes differ (",
                 dtypeName(in[1]->dtype()), " vs ", dtypeName(in[2]->dtype()), ")");
    const Shape s = broadcastShape(broadcastShape(c.shape(), in[1]->shape()), in[2]->shape());
    plan(in, s);
    if (!cond_plan_.matches(s, c.shape())) cond_plan_.init(s, c.shape());
    const uint8_t* cp = c.data<uint8_t>();
    cond_plan_.forEachRow([&](int64_t o, int64_t, int64_t ib, int64_t n, int64_t, int64_t sb) {
      for (int64_t i = 0; i < n; ++i) from_[o + i] = cp[ib + i * sb] ? 0 : 1;
    });
    out[0]->resize(s, in[1]->dtype());
    dispatchDType(in[1]->dtype(), [&](auto z) {
      using T = decltype(z);
      T* y = out[0]->data<T>();
      for (size_t k = 0; k < 2; ++k) {
        const T* x = in[k + 1]->data<T>();
        plans_[k].forEachRow([&](int64_t o, int64_t, int64_t ib, int64_t n, int64_t,
                                 int64_t sb) {
          for (int64_t i = 0; i < n; ++i)
            if (from_[o + i] == k) y[o + i] = x[ib + i * sb];
        });
      }
    });
  }

 private:
  BroadcastPlan cond_plan_;
};

// Min/Max of one or more inputs of one dtype; NaN wins (numpy's
// minimum/maximum), ties keep the earliest input.
class MinMaxOp : public SelectOp {
 public:
  explicit MinMaxOp(bool is_max) : max_(is_max) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs at least one input");
    SLIM_ENFORCE_LE(in.size(), size_t{255}, label, ": too many inputs");
    Shape s = in[0]->shape();
    for (const Tensor* t : in) {
      SLIM_ENFORCE(t && t->dtype() == in[0]->dtype(), label, ": inputs must share one dtype");
      s = broadcastShape(s, t->shape());
    }
    plan(in, s);
    out[0]->resize(s, in[0]->dtype());
    const bool mx = max_;
    dispatchDType(in[0]->dtype(), [&](auto z) {
      using T = decltype(z);
      T* y = out[0]->data<T>();
      for (size_t k = 0; k < in.size(); ++k) {
        const T* x = in[k]->data<T>();
        plans_[k].forEachRow([&](int64_t o, int64_t, int64_t ib, int64_t n, int64_t,
                                 int64_t sb) {
          for (int64_t i = 0; i < n; ++i) {
            const T v = x[ib + i * sb];
            bool take = k == 0 || (mx ? v > y[o + i] : v < y[o + i]);
            if constexpr (std::is_floating_point_v<T>)
              take = take || (std::isnan(v) && !std::isnan(y[o + i]));
            if (take) {
              y[o + i] = v;
              from_[o + i] = static_cast<uint8_t>(k);
            }
          }
        });
      }
    });
  }

 private:
  bool max_;
};

}  // namespace

void registerLogicOps(OpRegistry& r) {
  auto cmp = [&r](const char* name, Cmp c) {
    r.add(name, [c](const Attrs&) { return std::make_unique<CompareOp>(c); });
  };
  cmp("Equal", Cmp::kEq);
  cmp("Less", Cmp::kLt);
  cmp("Greater", Cmp::kGt);
  cmp("LessOrEqual", Cmp::kLe);
  cmp("GreaterOrEqual", Cmp::kGe);
  cmp("And", Cmp::kAnd);
  cmp("Or", Cmp::kOr);
  cmp("Xor", Cmp::kXor);
  r.add("Not", [](const Attrs&) { return std::make_unique<NotOp>(); });
  r.add("Where", [](const Attrs&) { return std::make_unique<WhereOp>(); });
  r.add("Min", [](const Attrs&) { return std::make_unique<MinMaxOp>(false); });
  r.add("Max", [](const Attrs&) { return std::make_unique<MinMaxOp>(true); });
}

}  // namespace slim::ops
