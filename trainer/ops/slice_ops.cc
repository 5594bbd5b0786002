// Index arithmetic on whole tensors: Slice, Split, Tile (every dtype, float
// backward) and Range. Slice, Split and Tile are all affine gathers: output
// element (k_0..k_{r-1}) reads input element base + sum k_d * stride_d (a
// negative stride walks backwards, a zero stride repeats), so one row walker
// drives each forward copy and each backward scatter-add.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/dtype_dispatch.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"

namespace slim::ops {
namespace {

using detail::intValues;

// Row-major element strides of `s`.
std::vector<int64_t> contiguousStrides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int d = static_cast<int>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

// An affine gather: output shape `os` (row-major), input offset
// base + sum k_d * st[d]. Size-1 dims are dropped and dims that continue
// each other are merged, so a channel slice of NCHW is N long rows.
struct AffineMap {
  Shape os;
  int64_t base = 0;
  std::vector<int64_t> st;

  void simplify() {
    Shape s;
    std::vector<int64_t> t;
    for (size_t d = 0; d < os.size(); ++d) {
      if (os[d] == 1) continue;
      if (!s.empty() && t.back() == st[d] * os[d]) {
        s.back() *= os[d];
        t.back() = st[d];
      } else {
        s.push_back(os[d]);
        t.push_back(st[d]);
      }
    }
    os = std::move(s);
    st = std::move(t);
  }

  // fn(o, i, s, n): output elements [o, o+n) come from input i, i+s, ...
  template <class Fn>
  void forEachRow(Fn&& fn) const {
    forElements(0, numelOf(os), fn);
  }
  // forEachRow for output elements [e0, e1) only: the first and the last
  // row may be cut where the range cuts them.
  template <class Fn>
  void forElements(int64_t e0, int64_t e1, Fn&& fn) const {
    if (e0 >= e1) return;
    const int r = static_cast<int>(os.size());
    if (r == 0) return fn(int64_t{0}, base, int64_t{0}, int64_t{1});
    const int64_t n = os[r - 1], s = st[r - 1];
    std::vector<int64_t> idx(r, 0);
    int64_t i = base;
    for (int64_t d = r - 2, rem = e0 / n; d >= 0; --d) {  // the first row's position
      idx[d] = rem % os[d];
      rem /= os[d];
      i += idx[d] * st[d];
    }
    for (int64_t o = e0 / n * n; o < e1; o += n) {
      const int64_t b = std::max(o, e0), e = std::min(o + n, e1);
      fn(b, i + (b - o) * s, s, e - b);
      for (int d = r - 2; d >= 0; --d) {
        i += st[d];
        if (++idx[d] < os[d]) break;
        i -= st[d] * os[d];
        idx[d] = 0;
      }
    }
  }
  // True when no two output elements read one input element (no zero
  // stride: Slice and Split, not Tile's repeats).
  bool injective() const {
    return std::none_of(st.begin(), st.end(), [](int64_t v) { return v == 0; });
  }
};

constexpr int64_t kGrainBytes = detail::kGrainCheap * 4;  // per thread at least (parallel.h)

// y[o..] = x[map(o)] for any dtype (elements moved as N-byte words). Output
// element ranges run over the threads: a copy, the same bits however split.
template <size_t N>
void gatherBytes(const AffineMap& m, const char* x, char* y) {
  auto row = [&](int64_t o, int64_t i, int64_t s, int64_t n) {
    if (s == 1) {
      std::memcpy(y + o * N, x + i * N, static_cast<size_t>(n) * N);
      return;
    }
    for (int64_t k = 0; k < n; ++k) std::memcpy(y + (o + k) * N, x + (i + k * s) * N, N);
  };
  detail::parallelRange(numelOf(m.os), kGrainBytes / N,
                        [&](int64_t e0, int64_t e1) { m.forElements(e0, e1, row); });
}
void gather(const AffineMap& m, const Tensor& x, Tensor& y) {
  const auto* xp = static_cast<const char*>(x.raw());
  auto* yp = static_cast<char*>(y.raw());
  switch (dtypeSize(x.dtype())) {
    case 1: gatherBytes<1>(m, xp, yp); break;
    case 4: gatherBytes<4>(m, xp, yp); break;
    case 8: gatherBytes<8>(m, xp, yp); break;
    default: SLIM_THROW(ModelError, "unsupported dtype ", dtypeName(x.dtype()));
  }
}

// dx[map(o)] += g[o] (dx already sized and zeroed): the exact adjoint of
// gather; repeated reads (Tile) accumulate in output order, on one thread.
// An injective map (Slice, Split) adds one value to each element it
// touches: output element ranges then run over the threads.
void scatterAdd(const AffineMap& m, const float* g, float* dx) {
  auto row = [&](int64_t o, int64_t i, int64_t s, int64_t n) {
    float* d = dx + i;
    const float* gr = g + o;
    for (int64_t k = 0; k < n; ++k) d[k * s] += gr[k];
  };
  if (!m.injective()) return m.forEachRow(row);
  detail::parallelRange(numelOf(m.os), kGrainBytes / 4,
                        [&](int64_t e0, int64_t e1) { m.forElements(e0, e1, row); });
}

// zeroedF32InputGrad with the zeros written over the threads.
Tensor* zeroedGrad(const std::vector<Tensor*>& in, const std::vector<Tensor*>& din,
                   const std::string& label) {
  if (din.empty() || !din[0]) return nullptr;
  requireF32(*in[0], label);
  din[0]->resize(in[0]->shape());
  detail::parallelZero(din[0]->raw(), static_cast<int64_t>(din[0]->bytes()));
  return din[0];
}

// An op whose output is input 0 read through an affine index map (Slice,
// Tile): forward gathers through map_, backward adds the gradient back
// through the same map (a sum over Tile's repeats).
class MappedOp : public ShapeOnlyBackwardOp {
 public:
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    Tensor* dx = zeroedGrad(in, din, label);
    if (dx && dout[0]) scatterAdd(map_, dout[0]->f32(), dx->f32());
  }

 protected:
  AffineMap map_;
};

// Slice(data, starts, ends, axes, steps) (opset 10+; opset 1's attributes
// are moved to inputs by the importer, and are accepted here as well).
class SliceOp : public MappedOp {
 public:
  explicit SliceOp(const Attrs& a)
      : starts_(a.getInts("starts", {})), ends_(a.getInts("ends", {})),
        axes_(a.getInts("axes", {})) {}
  std::vector<int> nonDiffInputs() const override { return {1, 2, 3, 4}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing data input");
    const Tensor& x = *in[0];
    auto input = [&](size_t k, const std::vector<int64_t>& dflt) {
      return in.size() > k && in[k] ? intValues(*in[k]) : dflt;
    };
    const std::vector<int64_t> starts = input(1, starts_), ends = input(2, ends_);
    SLIM_ENFORCE_EQ(starts.size(), ends.size(), label, ": starts vs ends length");
    std::vector<int64_t> axes = input(3, axes_);
    if (axes.empty())
      for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
    const std::vector<int64_t> steps = input(4, std::vector<int64_t>(starts.size(), 1));
    SLIM_ENFORCE(axes.size() == starts.size() && steps.size() == starts.size(), label,
                 ": starts, ends, axes and steps must have the same length");
    const Shape& xs = x.shape();
    map_.os = xs;
    map_.st = contiguousStrides(xs);
    map_.base = 0;
    std::vector<bool> seen(xs.size(), false);
    for (size_t k = 0; k < starts.size(); ++k) {
      const int d = normalizeAxis(axes[k], x.ndim(), label.c_str());
      SLIM_ENFORCE(!seen[d], label, ": axis ", axes[k], " repeated");
      seen[d] = true;
      const int64_t step = steps[k], len = xs[d];
      SLIM_ENFORCE(step != 0 && step != INT64_MIN, label, ": step ", step, " on axis ", axes[k]);
      // ONNX clamping, after adding len to negative indices: starts to
      // [0, len] (step > 0) or [0, len - 1] (step < 0); ends to [0, len] or
      // [-1, len - 1]. An empty axis with step < 0 gives start -1: no reads.
      const int64_t hi = step > 0 ? len : len - 1;
      int64_t b = starts[k], e = ends[k];
      if (b < 0) b += len;
      if (e < 0) e += len;
      b = std::min(std::max(b, int64_t{0}), hi);
      e = std::min(std::max(e, step > 0 ? int64_t{0} : int64_t{-1}), hi);
      int64_t count = 0;
      if (step > 0 && e > b) count = 1 + (e - b - 1) / step;
      if (step < 0 && b > e) count = 1 + (b - e - 1) / -step;
      map_.os[d] = count;
      if (count > 0) map_.base += b * map_.st[d];
      map_.st[d] *= step;
    }
    out[0]->resize(map_.os, x.dtype());
    map_.simplify();
    gather(map_, x, *out[0]);
  }

 private:
  std::vector<int64_t> starts_, ends_, axes_;
};

// Split(input, split) along `axis`: sizes from the input (opset 13+), the
// attribute (opset 2-12), or equal chunks (the last one smaller, opset 18's
// num_outputs rule) when neither is given.
class SplitOp : public ShapeOnlyBackwardOp {
 public:
  explicit SplitOp(const Attrs& a)
      : axis_(a.getInt("axis", 0)), split_(a.getInts("split", {})),
        num_outputs_(a.getInt("num_outputs", 0)) {}
  std::vector<int> nonDiffInputs() const override { return {1}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    const int ax = normalizeAxis(axis_, x.ndim(), label.c_str());
    const int64_t len = x.shape()[ax], n = static_cast<int64_t>(out.size());
    SLIM_ENFORCE_GT(n, 0, label, ": no outputs");
    SLIM_ENFORCE(num_outputs_ == 0 || num_outputs_ == n, label, ": num_outputs ",
                 num_outputs_, " but the node has ", n, " outputs");
    std::vector<int64_t> sizes = in.size() > 1 && in[1] ? intValues(*in[1]) : split_;
    if (sizes.empty()) {
      const int64_t chunk = (len + n - 1) / n;
      for (int64_t j = 0; j < n; ++j)
        sizes.push_back(std::clamp(len - j * chunk, int64_t{0}, chunk));
    }
    SLIM_ENFORCE_EQ(static_cast<int64_t>(sizes.size()), n, label, ": split sizes vs outputs");
    int64_t total = 0;
    for (int64_t s : sizes) {
      SLIM_ENFORCE_GE(s, 0, label, ": negative split size");
      total += s;
    }
    SLIM_ENFORCE_EQ(total, len, label, ": split sizes must add up to axis ", ax, "'s size");
    const std::vector<int64_t> st = contiguousStrides(x.shape());
    maps_.assign(out.size(), AffineMap{});
    for (int64_t j = 0, off = 0; j < n; off += sizes[j++]) {
      AffineMap& m = maps_[j];
      m.os = x.shape();
      m.os[ax] = sizes[j];
      m.st = st;
      m.base = off * st[ax];
      if (!out[j]) continue;
      out[j]->resize(m.os, x.dtype());
      m.simplify();
      gather(m, x, *out[j]);
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    Tensor* dx = zeroedGrad(in, din, label);
    if (!dx) return;
    for (size_t j = 0; j < maps_.size() && j < dout.size(); ++j)
      if (dout[j]) scatterAdd(maps_[j], dout[j]->f32(), dx->f32());
  }

 private:
  int64_t axis_;
  std::vector<int64_t> split_;
  int64_t num_outputs_;
  std::vector<AffineMap> maps_;  // maps_[j]: output j
};

// Tile(input, repeats): output dim d = repeats[d] * n_d, gathered as the
// 2r-dim map (repeats[d], n_d) with strides (0, stride_d); backward sums the
// gradient over the repeats.
class TileOp : public MappedOp {
 public:
  std::vector<int> nonDiffInputs() const override { return {1}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs input and repeats");
    const Tensor& x = *in[0];
    const std::vector<int64_t> rep = intValues(*in[1]);
    SLIM_ENFORCE_EQ(static_cast<int64_t>(rep.size()), static_cast<int64_t>(x.ndim()), label,
                    ": repeats length vs input rank");
    const std::vector<int64_t> st = contiguousStrides(x.shape());
    Shape ys;
    map_ = AffineMap{};
    for (int d = 0; d < x.ndim(); ++d) {
      SLIM_ENFORCE_GE(rep[d], 0, label, ": negative repeat");
      ys.push_back(rep[d] * x.shape()[d]);
      map_.os.insert(map_.os.end(), {rep[d], x.shape()[d]});
      map_.st.insert(map_.st.end(), {0, st[d]});
    }
    out[0]->resize(ys, x.dtype());
    map_.simplify();
    gather(map_, x, *out[0]);
  }
};

// Range(start, limit, delta): scalars of one dtype; element i is
// start + i * delta (numpy.arange), ceil((limit - start) / delta) of them.
class RangeOp : public Op {
 public:
  bool differentiable() const override { return false; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 3 && in[0] && in[1] && in[2], label,
                 ": needs start, limit and delta");
    const DType dt = in[0]->dtype();
    for (int k = 0; k < 3; ++k)
      SLIM_ENFORCE(in[k]->numel() == 1 && in[k]->dtype() == dt, label,
                   ": start, limit and delta must be scalars of one dtype");
    detail::dispatchDType(dt, [&](auto z) {
      using T = decltype(z);
      const T start = in[0]->data<T>()[0], limit = in[1]->data<T>()[0],
              delta = in[2]->data<T>()[0];
      SLIM_ENFORCE(delta != T(0), label, ": delta is 0");
      int64_t n = 0;
      if constexpr (std::is_floating_point_v<T>) {
        const double count = std::ceil((static_cast<double>(limit) - start) / delta);
        n = static_cast<int64_t>(std::max(0.0, count));
      } else {
        const int64_t s = start, l = limit, d = delta;
        if (d > 0 && l > s) n = (l - s + d - 1) / d;
        if (d < 0 && s > l) n = (s - l - d - 1) / -d;
      }
      out[0]->resize({n}, dt);
      T* y = out[0]->data<T>();
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    });
  }
};

}  // namespace

void registerSliceOps(OpRegistry& r) {
  r.add("Slice", [](const Attrs& a) { return std::make_unique<SliceOp>(a); });
  r.add("Split", [](const Attrs& a) { return std::make_unique<SplitOp>(a); });
  r.add("Tile", [](const Attrs&) { return std::make_unique<TileOp>(); });
  r.add("Range", [](const Attrs&) { return std::make_unique<RangeOp>(); });
}

}  // namespace slim::ops
