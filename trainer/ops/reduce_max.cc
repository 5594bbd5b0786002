// ReduceMax/ReduceMin (axes attribute up to opset 17; the opset-18 axes input
// is folded into the attribute by the importer, or read here when it is a
// tensor) and ArgMax/ArgMin (axis, keepdims, select_last_index; int64 output,
// no gradient). ReduceMax/Min remember the flat input index of every output's
// extremum (the first in row-major order on ties; NaN wins) and route dy there.
#include <cmath>
#include <vector>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"

namespace slim::ops {
namespace {

class ReduceMaxOp : public Op {
 public:
  ReduceMaxOp(const Attrs& a, bool min)
      : min_(min),
        keepdims_(a.getInt("keepdims", 1) != 0),
        noop_empty_(a.getInt("noop_with_empty_axes", 0) != 0),
        attr_axes_(a.getInts("axes", {})) {}

  std::vector<int> nonDiffInputs() const override { return {1}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    const Tensor& x = requireF32Input(in, label);
    const int r = x.ndim();
    std::vector<int64_t> axes = attr_axes_;
    if (in.size() > 1 && in[1]) {
      const int64_t* p = in[1]->data<int64_t>();
      axes.assign(p, p + in[1]->numel());
    }
    identity_ = axes.empty() && noop_empty_;
    if (identity_) {
      *out[0] = x;
      return;
    }
    std::vector<bool> reduced(static_cast<size_t>(r), axes.empty());
    for (int64_t ax : axes) reduced[normalizeAxis(ax, r, label.c_str())] = true;
    // kept: x's shape with reduced axes 1; ostride: output stride of each
    // axis of x (0 on reduced axes).
    Shape kept = x.shape(), oshape;
    for (int d = 0; d < r; ++d) {
      if (reduced[d]) kept[d] = 1;
      if (!reduced[d] || keepdims_) oshape.push_back(kept[d]);
    }
    std::vector<int64_t> ostride(static_cast<size_t>(r), 0), idx(static_cast<size_t>(r), 0);
    for (int64_t d = r - 1, s = 1; d >= 0; --d) {
      ostride[d] = reduced[d] ? 0 : s;
      s *= kept[d];
    }
    out[0]->resize(oshape);
    float* y = out[0]->f32();
    const int64_t no = out[0]->numel();
    arg_.assign(static_cast<size_t>(no), -1);
    std::fill(y, y + no, min_ ? INFINITY : -INFINITY);
    const float* xp = x.f32();
    int64_t o = 0;
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      const float v = xp[i];
      if (arg_[o] < 0 || (min_ ? v < y[o] : v > y[o]) || (std::isnan(v) && !std::isnan(y[o]))) {
        y[o] = v;
        arg_[o] = i;
      }
      for (int d = r - 1; d >= 0; --d) {  // odometer over x, o follows
        o += ostride[d];
        if (++idx[d] < x.dim(d)) break;
        o -= ostride[d] * x.dim(d);
        idx[d] = 0;
      }
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    if (din.empty() || !din[0]) return;
    din[0]->resize(in[0]->shape());
    if (dout[0] && identity_) {
      din[0]->copyFrom(*dout[0]);
      return;
    }
    din[0]->zero();
    if (!dout[0]) return;
    const float* g = dout[0]->f32();
    float* dx = din[0]->f32();
    for (size_t o = 0; o < arg_.size(); ++o)
      if (arg_[o] >= 0) dx[arg_[o]] += g[o];
  }

 private:
  bool min_, keepdims_, noop_empty_, identity_ = false;
  std::vector<int64_t> attr_axes_;
  std::vector<int64_t> arg_;  // flat input index of each output's max
};

class ArgMaxOp : public Op {
 public:
  ArgMaxOp(const Attrs& a, bool min)
      : min_(min),
        axis_(a.getInt("axis", 0)),
        keepdims_(a.getInt("keepdims", 1) != 0),
        last_(a.getInt("select_last_index", 0) != 0) {}

  bool differentiable() const override { return false; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    const Tensor& x = requireF32Input(in, label);
    const int r = x.ndim();
    const int ax = normalizeAxis(axis_, r, label.c_str());
    // x: (outer, L, inner) -> y: (outer, inner)
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; ++d) outer *= x.dim(d);
    for (int d = ax + 1; d < r; ++d) inner *= x.dim(d);
    const int64_t L = x.dim(ax);
    SLIM_ENFORCE(L > 0, label, ": ArgMax over an empty axis");
    Shape os = x.shape();
    if (keepdims_) os[ax] = 1;
    else os.erase(os.begin() + ax);
    out[0]->resize(os, DType::kI64);
    int64_t* y = out[0]->data<int64_t>();
    const float* xp = x.f32();
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t b = 0; b < inner; ++b) {
        const float* p = xp + a * L * inner + b;
        int64_t best = 0;
        for (int64_t l = 1; l < L; ++l) {
          const float v = p[l * inner], m = p[best * inner];
          const bool better = min_ ? v < m : v > m;
          if (better || (last_ && v == m)) best = l;
        }
        y[a * inner + b] = best;
      }
  }

 private:
  bool min_;
  int64_t axis_;
  bool keepdims_, last_;
};

}  // namespace

void registerReduceMaxOps(OpRegistry& r) {
  r.add("ReduceMax", [](const Attrs& a) { return std::make_unique<ReduceMaxOp>(a, false); });
  r.add("ReduceMin", [](const Attrs& a) { return std::make_unique<ReduceMaxOp>(a, true); });
  r.add("ArgMax", [](const Attrs& a) { return std::make_unique<ArgMaxOp>(a, false); });
  r.add("ArgMin", [](const Attrs& a) { return std::make_unique<ArgMaxOp>(a, true); });
}

}  // namespace slim::ops
