// Shape plumbing with backward: Concat, Flatten, Reshape, Transpose,
// Identity, Squeeze, Unsqueeze, Dropout. Metadata-only ops return a view that
// shares the input's storage; their backward copies the gradient. Concat and
// Transpose move raw elements, so they work for every dtype.
#include <algorithm>
#include <cstring>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"

namespace slim::ops {
namespace {

// The int64 values of a shape/axes input.
std::vector<int64_t> intsOf(const Tensor& t) {
  const int64_t* p = t.data<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

// din = dout viewed in the input's shape (or zeros when no gradient flows).
void copyGrad(const Tensor& x, const Tensor* g, Tensor* dx) {
  if (!dx) return;
  dx->resize(x.shape());
  if (g) {
    dx->copyFrom(*g);
  } else {
    dx->zero();
  }
}

// Base for ops whose output is a reshaped view of input 0.
class ViewOp : public ShapeOnlyBackwardOp {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    *out[0] = in[0]->reshaped(outShape(in));
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!din.empty()) copyGrad(*in[0], dout[0], din[0]);
  }
  std::vector<int> nonDiffInputs() const override { return {1}; }

 protected:
  virtual Shape outShape(const std::vector<Tensor*>& in) const = 0;
};

class IdentityOp : public ViewOp {
  Shape outShape(const std::vector<Tensor*>& in) const override { return in[0]->shape(); }
};

class FlattenOp : public ViewOp {
 public:
  explicit FlattenOp(const Attrs& a) : axis_(a.getInt("axis", 1)) {}

 private:
  Shape outShape(const std::vector<Tensor*>& in) const override {
    const Shape& s = in[0]->shape();
    const int ax = normalizeAxis(axis_, static_cast<int>(s.size()), label.c_str(), 1);
    int64_t o = 1, i = 1;
    for (int d = 0; d < static_cast<int>(s.size()); ++d) (d < ax ? o : i) *= s[d];
    return {o, i};
  }
  int64_t axis_;
};

class ReshapeOp : public ViewOp {
 public:
  explicit ReshapeOp(const Attrs& a) : allowzero_(a.getInt("allowzero", 0) != 0) {}

 private:
  Shape outShape(const std::vector<Tensor*>& in) const override {
    SLIM_ENFORCE(in.size() > 1 && in[1], label, ": missing shape input");
    Shape s = intsOf(*in[1]);
    const Shape& x = in[0]->shape();
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 0 && !allowzero_) {
        SLIM_ENFORCE_LT(d, x.size(), label, ": shape ", shapeStr(s),
                        " copies a dimension the input ", shapeStr(x), " lacks");
        s[d] = x[d];
      }
    }
    return s;
  }
  bool allowzero_;
};

// Squeeze/Unsqueeze: axes attribute (opset < 13) or int64 input 1.
class SqueezeOp : public ViewOp {
 public:
  SqueezeOp(const Attrs& a, bool unsqueeze)
      : unsqueeze_(unsqueeze), axes_(a.getInts("axes", {})) {}

 private:
  Shape outShape(const std::vector<Tensor*>& in) const override {
    const std::vector<int64_t> axes = in.size() > 1 && in[1] ? intsOf(*in[1]) : axes_;
    const Shape& x = in[0]->shape();
    const int r = static_cast<int>(x.size());
    if (unsqueeze_) {
      const int ro = r + static_cast<int>(axes.size());
      std::vector<bool> ins(ro, false);
      for (int64_t a : axes) {
        const int k = normalizeAxis(a, ro, label.c_str());
        SLIM_ENFORCE(!ins[k], label, ": axis ", a, " repeated");
        ins[k] = true;
      }
      Shape s;
      for (int d = 0, j = 0; d < ro; ++d) s.push_back(ins[d] ? 1 : x[j++]);
      return s;
    }
    std::vector<bool> drop(r, axes.empty());
    for (int64_t a : axes) {
      const int k = normalizeAxis(a, r, label.c_str());
      SLIM_ENFORCE_EQ(x[k], 1, label, ": cannot squeeze axis ", a, " of ", shapeStr(x));
      drop[k] = true;
    }
    Shape s;
    for (int d = 0; d < r; ++d)
      if (!(drop[d] && x[d] == 1)) s.push_back(x[d]);
    return s;
  }
  bool unsqueeze_;
  std::vector<int64_t> axes_;
};

class ConcatOp : public ShapeOnlyBackwardOp {
 public:
  explicit ConcatOp(const Attrs& a) : axis_(a.getInt("axis")) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs inputs");
    const Tensor& x0 = *in[0];
    const int ax = normalizeAxis(axis_, x0.ndim(), label.c_str());
    Shape s = x0.shape();
    s[ax] = 0;
    for (const Tensor* t : in) {
      SLIM_ENFORCE(t && t->ndim() == x0.ndim() && t->dtype() == x0.dtype(), label,
                   ": inputs differ in rank or dtype");
      for (int d = 0; d < x0.ndim(); ++d)
        if (d != ax)
          SLIM_ENFORCE_EQ(t->shape()[d], x0.shape()[d], label, ": ", shapeStr(t->shape()),
                          " vs ", shapeStr(x0.shape()));
      s[ax] += t->shape()[ax];
    }
    outer_ = 1;
    for (int d = 0; d < ax; ++d) outer_ *= s[d];
    out[0]->resize(s, x0.dtype());
    const size_t es = dtypeSize(x0.dtype());
    const size_t row = static_cast<size_t>(s.empty() ? 1 : numelOf(s) / std::max<int64_t>(outer_, 1)) * es;
    auto* y = static_cast<char*>(out[0]->raw());
    size_t off = 0;
    for (const Tensor* t : in) {
      const size_t chunk = static_cast<size_t>(t->numel() / std::max<int64_t>(outer_, 1)) * es;
      const auto* src = static_cast<const char*>(t->raw());
      for (int64_t o = 0; o < outer_ && chunk > 0; ++o)
        std::memcpy(y + o * row + off, src + o * chunk, chunk);
      off += chunk;
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    const int64_t row = out[0]->numel() / std::max<int64_t>(outer_, 1);
    int64_t off = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      const int64_t chunk = in[k]->numel() / std::max<int64_t>(outer_, 1);
      if (k < din.size() && din[k]) {
        din[k]->resize(in[k]->shape());
        if (!dout[0]) {
          din[k]->zero();
        } else {
          const float* g = dout[0]->f32();
          float* d = din[k]->f32();
          for (int64_t o = 0; o < outer_ && chunk > 0; ++o)
            std::memcpy(d + o * chunk, g + o * row + off, chunk * sizeof(float));
        }
      }
      off += chunk;
    }
  }

 private:
  int64_t axis_, outer_ = 1;
};

// Output rows [r0, r1) (the last dim) of permuteCopy.
template <class E>
void permuteRows(const E* x, E* y, const Shape& oshape, const std::vector<int64_t>& st, int64_t r0,
                 int64_t r1) {
  const int r = static_cast<int>(oshape.size());
  const int64_t inner = oshape[r - 1], ist = st[r - 1];
  int64_t idx[16] = {0};
  int64_t base = 0;
  for (int64_t d = r - 2, rem = r0; d >= 0; --d) {  // the first row's position
    idx[d] = rem % oshape[d];
    rem /= oshape[d];
    base += idx[d] * st[d];
  }
  for (int64_t o = r0 * inner; o < r1 * inner; o += inner) {
    for (int64_t i = 0; i < inner; ++i) y[o + i] = x[base + i * ist];
    for (int d = r - 2; d >= 0; --d) {
      base += st[d];
      if (++idx[d] < oshape[d]) break;
      base -= st[d] * oshape[d];
      idx[d] = 0;
    }
  }
}

// A permutation that moves the input's last axis to output axis q < r - 1
// (attention's K^T: [T, N*H, D] -> [N*H, D, T]): per plane of output axes
// (q, r - 1), an 8x8-blocked transpose (detail::transposeTo) that reads the
// input's rows whole, where permuteRows reads each output row's elements a
// whole input row apart. Planes over the threads; a copy, any split the
// same bits. False when the planes are too thin to gain.
bool permutePlanes(const float* x, float* y, const Shape& oshape, const std::vector<int64_t>& st) {
  const int r = static_cast<int>(oshape.size());
  int q = -1;
  for (int d = 0; d < r - 1; ++d)
    if (st[d] == 1) q = d;
  if (q < 0 || oshape[q] < 8 || oshape[r - 1] < 8) return false;
  std::vector<int64_t> ost(r, 1);
  for (int d = r - 2; d >= 0; --d) ost[d] = ost[d + 1] * oshape[d + 1];
  const int64_t rows = oshape[r - 1], cols = oshape[q], plane = rows * cols;
  const int64_t planes = numelOf(oshape) / plane;
  detail::parallelRange(
      planes, std::max<int64_t>(1, detail::kGrainCheap / 4 / plane), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          int64_t in_off = 0, out_off = 0, rem = p;
          for (int d = r - 2; d >= 0; --d) {
            if (d == q) continue;
            const int64_t i = rem % oshape[d];
            rem /= oshape[d];
            in_off += i * st[d];
            out_off += i * ost[d];
          }
          detail::transposeTo(rows, cols, x + in_off, st[r - 1], y + out_off, ost[q]);
        }
      });
  return true;
}

// Copies elements of size E: y[out index] = x[sum idx[d] * st[d]]. Output
// rows run over the threads; a copy, so any split gives the same bits.
template <class E>
void permuteCopy(const E* x, E* y, const Shape& oshape, const std::vector<int64_t>& st) {
  const int r = static_cast<int>(oshape.size());
  const int64_t n = numelOf(oshape);
  if (n == 0) return;
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  if constexpr (sizeof(E) == 4) {
    if (st[r - 1] != 1 &&
        permutePlanes(reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), oshape, st))
      return;
  }
  // Elements per thread at least (parallel.h): contiguous rows are a copy,
  // strided reads (a moved last axis) cost a few times more.
  const int64_t inner = oshape[r - 1];
  const int64_t grain = st[r - 1] == 1 ? detail::kGrainCheap : detail::kGrainCheap / 4;
  detail::parallelRange(n / inner, std::max<int64_t>(1, grain / inner),
                        [&](int64_t r0, int64_t r1) { permuteRows(x, y, oshape, st, r0, r1); });
}

void permute(const Tensor& x, Tensor& y, const std::vector<int64_t>& perm) {
  const int r = x.ndim();
  SLIM_ENFORCE_LE(r, 16, "Transpose: rank too large");
  std::vector<int64_t> in_st(r, 1), st(r);
  for (int d = r - 2; d >= 0; --d) in_st[d] = in_st[d + 1] * x.shape()[d + 1];
  Shape os(r);
  for (int d = 0; d < r; ++d) {
    os[d] = x.shape()[perm[d]];
    st[d] = in_st[perm[d]];
  }
  y.resize(os, x.dtype());
  switch (dtypeSize(x.dtype())) {
    case 1: permuteCopy(static_cast<const uint8_t*>(x.raw()), static_cast<uint8_t*>(y.raw()), os, st); break;
    case 4: permuteCopy(static_cast<const uint32_t*>(x.raw()), static_cast<uint32_t*>(y.raw()), os, st); break;
    default: permuteCopy(static_cast<const uint64_t*>(x.raw()), static_cast<uint64_t*>(y.raw()), os, st); break;
  }
}

class TransposeOp : public ShapeOnlyBackwardOp {
 public:
  explicit TransposeOp(const Attrs& a) : attr_perm_(a.getInts("perm", {})) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const int r = in[0]->ndim();
    perm_ = attr_perm_;
    if (perm_.empty())
      for (int d = r - 1; d >= 0; --d) perm_.push_back(d);
    SLIM_ENFORCE_EQ(static_cast<int>(perm_.size()), r, label, ": perm length vs rank");
    inv_.assign(r, -1);
    for (int d = 0; d < r; ++d) {
      const int p = normalizeAxis(perm_[d], r, label.c_str());
      SLIM_ENFORCE(inv_[p] < 0, label, ": perm repeats axis ", p);
      perm_[d] = p;
      inv_[p] = d;
    }
    permute(*in[0], *out[0], perm_);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (din.empty() || !din[0]) return;
    if (!dout[0]) return copyGrad(*in[0], nullptr, din[0]);
    permute(*dout[0], *din[0], inv_);
  }

 private:
  std::vector<int64_t> attr_perm_, perm_, inv_;
};

// Dropout: ratio from the attribute (opset < 12) or input 1; input 2
// (training_mode) is ignored, RunContext::training decides. Training keeps an
// element with probability 1-p and scales it by 1/(1-p) (inverted dropout).
class DropoutOp : public ShapeOnlyBackwardOp {
 public:
  explicit DropoutOp(const Attrs& a)
      : ratio_attr_(a.getFloat("ratio", 0.5f)), frozen_(a.getInt("slim_frozen", 0) != 0) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext& ctx) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    float p = ratio_attr_;
    if (in.size() > 1 && in[1]) p = in[1]->f32()[0];
    SLIM_ENFORCE(p >= 0.f && p <= 1.f, label, ": ratio ", p, " outside [0, 1]");
    active_ = ctx.training && !frozen_ && p > 0.f;  // a frozen teacher never drops
    Tensor* mask_out = out.size() > 1 ? out[1] : nullptr;
    if (!active_) {
      *out[0] = x;
      if (mask_out) {
        mask_out->resize(x.shape(), DType::kU8);
        std::memset(mask_out->raw(), 1, mask_out->bytes());
      }
      return;
    }
    SLIM_ENFORCE(ctx.rng != nullptr, label, ": training-mode dropout needs an Rng");
    const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
    const int64_t n = x.numel();
    mask_.resize(x.shape());
    float* m = mask_.f32();
    for (int64_t i = 0; i < n; ++i) m[i] = ctx.rng->uniform() >= p ? scale : 0.f;
    out[0]->resize(x.shape());
    const float* xp = x.f32();
    float* y = out[0]->f32();
    for (int64_t i = 0; i < n; ++i) y[i] = xp[i] * m[i];
    if (mask_out) {
      mask_out->resize(x.shape(), DType::kU8);
      uint8_t* mo = mask_out->data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) mo[i] = m[i] != 0.f;
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (din.empty() || !din[0]) return;
    if (!active_ || !dout[0]) return copyGrad(*in[0], dout[0], din[0]);
    din[0]->resize(in[0]->shape());
    const float* g = dout[0]->f32();
    const float* m = mask_.f32();
    float* d = din[0]->f32();
    for (int64_t i = 0, n = in[0]->numel(); i < n; ++i) d[i] = g[i] * m[i];
  }

  std::vector<int> nonDiffInputs() const override { return {1, 2}; }

 private:
  float ratio_attr_;
  bool frozen_;
  bool active_ = false;
  Tensor mask_;  // 0 or 1/(1-p) per element, from the last training forward
};

}  // namespace

void registerShapeOps(OpRegistry& r) {
  r.add("Identity", [](const Attrs&) { return std::make_unique<IdentityOp>(); });
  r.add("Flatten", [](const Attrs& a) { return std::make_unique<FlattenOp>(a); });
  r.add("Reshape", [](const Attrs& a) { return std::make_unique<ReshapeOp>(a); });
  r.add("Squeeze", [](const Attrs& a) { return std::make_unique<SqueezeOp>(a, false); });
  r.add("Unsqueeze", [](const Attrs& a) { return std::make_unique<SqueezeOp>(a, true); });
  r.add("Concat", [](const Attrs& a) { return std::make_unique<ConcatOp>(a); });
  r.add("Transpose", [](const Attrs& a) { return std::make_unique<TransposeOp>(a); });
  r.add("Dropout", [](const Attrs& a) { return std::make_unique<DropoutOp>(a); });
}

}  // namespace slim::ops
