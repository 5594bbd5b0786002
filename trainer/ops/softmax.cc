// Softmax, LogSoftmax (opset >= 13 single-axis semantics; attribute
// coerce_2d=1 selects the opset < 13 "flatten to 2-D at axis" semantics) and
// SoftmaxCrossEntropyLoss. All views are (O, L, I): outer, the softmax axis,
// inner; every pass subtracts the max for numerical stability.
#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/fast_math.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

struct View {
  int64_t o = 1, l = 1, i = 1;
};

// (O, L, I) view of `s` around `axis`; coerce_2d folds everything from axis on.
View viewAt(const Shape& s, int axis, bool coerce_2d) {
  View v;
  for (int d = 0; d < axis; ++d) v.o *= s[d];
  if (coerce_2d) {
    for (size_t d = axis; d < s.size(); ++d) v.l *= s[d];
  } else {
    v.l = s[axis];
    for (size_t d = axis + 1; d < s.size(); ++d) v.i *= s[d];
  }
  return v;
}

// Threads: contiguous rows (I == 1) or, along a strided axis, columns
// (o, i) split into ranges; each row's or column's max and sum stay on one
// thread in the serial order, so the bits do not depend on the thread count.
// Elements per thread at least (parallel.h): the forward's fastExp costs
// about 1 ns an element, the backward a few multiply-adds.
constexpr int64_t kFwdGrain = int64_t{1} << 17, kBwdGrain = detail::kGrainCheap;

// Calls f(o, i0, i1) for the columns [c0, c1) of the o * I columns, cut at
// each o.
template <class F>
void forColumns(int64_t c0, int64_t c1, int64_t I, F&& f) {
  for (int64_t c = c0; c < c1;) {
    const int64_t o = c / I, i0 = c % I, i1 = std::min(I, i0 + (c1 - c));
    f(o, i0, i1);
    c += i1 - i0;
  }
}

// y = softmax(x) or log_softmax(x) along L. `scratch`: two floats per
// column of a thread's range (strided axis only).
void softmaxFwd(const float* x, float* y, View v, bool log, detail::ThreadScratch& scratch) {
  const int64_t L = v.l, I = v.i;
  if (L == 0) return;
  if (I == 1) {
    detail::parallelRange(v.o, std::max<int64_t>(1, kFwdGrain / L), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* xr = x + o * L;
        float* yr = y + o * L;
        const float mx = laneMax(xr, L);
        for (int64_t k = 0; k < L; ++k) yr[k] = fastExp(xr[k] - mx);
        const float s = laneSum(L, [yr](int64_t k) { return yr[k]; });
        if (log) {
          const float lse = mx + std::log(s);
          for (int64_t k = 0; k < L; ++k) yr[k] = xr[k] - lse;
        } else {
          const float inv = 1.f / s;
          for (int64_t k = 0; k < L; ++k) yr[k] *= inv;
        }
      }
    });
    return;
  }
  // Strided axis: vectorise across the inner dimension.
  scratch.ensureThreads();
  detail::parallelRange(v.o * I, std::max<int64_t>(1, kFwdGrain / L), [&](int64_t c0, int64_t c1) {
    float* const buf = scratch.get(static_cast<size_t>(2 * std::min(I, c1 - c0)));
    forColumns(c0, c1, I, [&](int64_t o, int64_t i0, int64_t i1) {
      const float* xo = x + o * L * I + i0;
      float* yo = y + o * L * I + i0;
      const int64_t n = i1 - i0;
      float* m = buf;
      float* z = buf + n;
      std::fill(m, m + n, -std::numeric_limits<float>::infinity());
      std::fill(z, z + n, 0.f);
      for (int64_t k = 0; k < L; ++k)
        for (int64_t i = 0; i < n; ++i) m[i] = std::max(m[i], xo[k * I + i]);
      for (int64_t k = 0; k < L; ++k)
        for (int64_t i = 0; i < n; ++i) {
          const float e = fastExp(xo[k * I + i] - m[i]);
          yo[k * I + i] = e;
          z[i] += e;
        }
      if (log) {
        for (int64_t i = 0; i < n; ++i) z[i] = m[i] + std::log(z[i]);
        for (int64_t k = 0; k < L; ++k)
          for (int64_t i = 0; i < n; ++i) yo[k * I + i] = xo[k * I + i] - z[i];
      } else {
        for (int64_t i = 0; i < n; ++i) z[i] = 1.f / z[i];
        for (int64_t k = 0; k < L; ++k)
          for (int64_t i = 0; i < n; ++i) yo[k * I + i] *= z[i];
      }
    });
  });
}

// dx from y and g: softmax dx = y*(g - sum(g*y)); log dx = g - exp(y)*sum(g).
void softmaxBwd(const float* y, const float* g, float* dx, View v, bool log,
                detail::ThreadScratch& scratch) {
  const int64_t L = v.l, I = v.i;
  if (L == 0) return;
  if (I == 1) {  // contiguous rows
    detail::parallelRange(v.o, std::max<int64_t>(1, kBwdGrain / L), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* yr = y + o * L;
        const float* gr = g + o * L;
        float* dr = dx + o * L;
        if (log) {
          const float sg = laneSum(L, [gr](int64_t k) { return gr[k]; });
          for (int64_t k = 0; k < L; ++k) dr[k] = gr[k] - fastExp(yr[k]) * sg;
        } else {
          const float sg = laneSum(L, [gr, yr](int64_t k) { return gr[k] * yr[k]; });
          for (int64_t k = 0; k < L; ++k) dr[k] = yr[k] * (gr[k] - sg);
        }
      }
    });
    return;
  }
  scratch.ensureThreads();
  detail::parallelRange(v.o * I, std::max<int64_t>(1, kBwdGrain / L), [&](int64_t c0, int64_t c1) {
    float* const s = scratch.get(static_cast<size_t>(std::min(I, c1 - c0)));
    forColumns(c0, c1, I, [&](int64_t o, int64_t i0, int64_t i1) {
      const int64_t base = o * L * I + i0, n = i1 - i0;
      std::fill(s, s + n, 0.f);
      for (int64_t k = 0; k < L; ++k)
        for (int64_t i = 0; i < n; ++i) {
          const int64_t j = base + k * I + i;
          s[i] += log ? g[j] : g[j] * y[j];
        }
      for (int64_t k = 0; k < L; ++k)
        for (int64_t i = 0; i < n; ++i) {
          const int64_t j = base + k * I + i;
          dx[j] = log ? g[j] - fastExp(y[j]) * s[i] : y[j] * (g[j] - s[i]);
        }
    });
  });
}

class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const Attrs& a, bool log)
      : log_(log), coerce_(a.getInt("coerce_2d", 0) != 0),
        axis_(a.getInt("axis", coerce_ ? 1 : -1)) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    const int ax = normalizeAxis(axis_, x.ndim(), label.c_str());
    view_ = viewAt(x.shape(), ax, coerce_);
    out[0]->resize(x.shape());
    softmaxFwd(x.f32(), out[0]->f32(), view_, log_, scratch_);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    softmaxBwd(out[0]->f32(), dout[0]->f32(), din[0]->f32(), view_, log_, scratch_);
  }
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }

 private:
  bool log_, coerce_;
  int64_t axis_;
  View view_;
  detail::ThreadScratch scratch_;
};

// SoftmaxCrossEntropyLoss: scores (N, C, d...) float, labels (N, d...) int64,
// optional weights (C). Outputs loss (scalar, or (N, d...) for 'none') and
// optionally log_prob. Mean divides by the summed weights of counted
// samples (their number without weights); 0 when every sample is ignored.
class SceLossOp : public Op {
 public:
  explicit SceLossOp(const Attrs& a)
      : reduction_(a.getString("reduction", "mean")),
        has_ignore_(a.has("ignore_index")),
        ignore_(a.getInt("ignore_index", 0)) {
    if (reduction_ != "mean" && reduction_ != "sum" && reduction_ != "none")
      SLIM_THROW(ModelError, "SoftmaxCrossEntropyLoss: reduction '", reduction_,
                 "' is not one of mean, sum, none");
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs scores and labels");
    const Tensor& x = *in[0];
    const Tensor& lab = *in[1];
    SLIM_ENFORCE_GE(x.ndim(), 2, label, ": scores must be (N, C, ...)");
    view_ = viewAt(x.shape(), 1, false);
    SLIM_ENFORCE_EQ(lab.numel(), view_.o * view_.i, label, ": labels ",
                    shapeStr(lab.shape()), " vs scores ", shapeStr(x.shape()));
    const float* w = in.size() > 2 && in[2] ? in[2]->f32() : nullptr;
    logp_.resize(x.shape());
    softmaxFwd(x.f32(), logp_.f32(), view_, true, scratch_);
    // Per-sample weight (0 = ignored) and loss.
    const int64_t S = view_.o * view_.i, C = view_.l, I = view_.i;
    const int64_t* lp = lab.data<int64_t>();
    sw_.resize(S);
    per_.resize(S);
    double wsum = 0, lsum = 0;
    for (int64_t s = 0; s < S; ++s) {
      const int64_t c = lp[s];
      if (has_ignore_ && c == ignore_) {
        sw_[s] = 0.f;
        per_[s] = 0.f;
        continue;
      }
      SLIM_ENFORCE(c >= 0 && c < C, label, ": label ", c, " at ", s,
                   " outside [0, ", C, ")");
      sw_[s] = w ? w[c] : 1.f;
      const int64_t o = s / I, i = s % I;
      per_[s] = -sw_[s] * logp_.f32()[(o * C + c) * I + i];
      wsum += sw_[s];
      lsum += per_[s];
    }
    Tensor& loss = *out[0];
    if (reduction_ == "none") {
      loss.resize(lab.shape());
      std::copy(per_.begin(), per_.end(), loss.f32());
      scale_ = 1.f;
    } else {
      loss.resize({});
      scale_ = reduction_ == "sum" ? 1.f : (wsum > 0 ? float(1.0 / wsum) : 0.f);
      loss.f32()[0] = float(lsum) * scale_;
    }
    if (out.size() > 1 && out[1]) {
      out[1]->resize(x.shape());
      out[1]->copyFrom(logp_);
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (din.empty() || !din[0]) return;
    Tensor& dx = *din[0];
    dx.resize(in[0]->shape());
    const int64_t C = view_.l, I = view_.i, S = view_.o * I;
    const float* lp = logp_.f32();
    float* d = dx.f32();
    const int64_t* lab = in[1]->data<int64_t>();
    dx.zero();
    if (dout[0]) {
      // dL/dx[o,c,i] = coef_s * (p[o,c,i] - [c == label_s]), coef_s = w_s*scale*g_s.
      const float* g = dout[0]->f32();
      const bool per_sample = reduction_ == "none";
      for (int64_t s = 0; s < S; ++s) {
        const float coef = sw_[s] * scale_ * (per_sample ? g[s] : g[0]);
        if (coef == 0.f) continue;
        const int64_t o = s / I, i = s % I;
        const int64_t base = o * C * I + i;
        for (int64_t c = 0; c < C; ++c) d[base + c * I] = coef * fastExp(lp[base + c * I]);
        d[base + lab[s] * I] -= coef;
      }
    }
    if (dout.size() > 1 && dout[1]) {  // through the log_prob output
      tmp_.resize(dx.shape());
      softmaxBwd(lp, dout[1]->f32(), tmp_.f32(), view_, true, scratch_);
      const float* t = tmp_.f32();
      for (int64_t k = 0; k < dx.numel(); ++k) d[k] += t[k];
    }
  }

  std::vector<int> nonDiffInputs() const override { return {1, 2}; }

 private:
  std::string reduction_;
  bool has_ignore_;
  int64_t ignore_;
  View view_;
  float scale_ = 1.f;
  Tensor logp_, tmp_;
  detail::ThreadScratch scratch_;
  std::vector<float> sw_, per_;
};

}  // namespace

void registerSoftmaxOps(OpRegistry& r) {
  r.add("Softmax", [](const Attrs& a) { return std::make_unique<SoftmaxOp>(a, false); });
  r.add("LogSoftmax", [](const Attrs& a) { return std::make_unique<SoftmaxOp>(a, true); });
  r.add("SoftmaxCrossEntropyLoss",
        [](const Attrs& a) { return std::make_unique<SceLossOp>(a); });
}

}  // namespace slim::ops
