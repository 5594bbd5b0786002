// Numpy multidirectional broadcasting for elementwise ops: the output shape,
// a row-wise iteration plan (adjacent dims merged, so same-shape and
// per-channel [1,C,1,1] cases become a few long contiguous rows) and the
// reduction of an output-shaped gradient back to an input's shape.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "trainer/core/tensor.h"
#include "trainer/ops/fast_math.h"
#include "trainer/ops/parallel.h"
#include "trainer/rank_reduction/exact_sum.h"

namespace slim::ops {

/// Broadcast shape of `a` and `b` (numpy rules, right-aligned).
/// @throws ShapeError naming both shapes when a dimension pair is neither
/// equal nor 1.
Shape broadcastShape(const Shape& a, const Shape& b);

/// Axis `axis` (negative: plus `rank`) as an index in [0, rank + rank_extra);
/// rank_extra = 1 admits axis == rank (Flatten).
/// @throws ModelError naming `what`, the axis and the rank when out of range.
int normalizeAxis(int64_t axis, int rank, const char* what, int rank_extra = 0);

/// Iteration plan for out = f(a, b) over the broadcast shape. After init()
/// the output is a sequence of rows of n contiguous elements; in each row
/// operand a (resp. b) advances with stride 1 or stays put (stride 0).
class BroadcastPlan {
 public:
  static constexpr int kMaxDims = 16;

  /// Plans for operand shapes `a` and `b`.
  /// @throws ShapeError when the shapes do not broadcast.
  void init(const Shape& a, const Shape& b);
  /// True when the last init() used exactly these shapes (cache check).
  bool matches(const Shape& a, const Shape& b) const {
    return ready_ && a == a_ && b == b_;
  }
  /// The broadcast output shape.
  const Shape& outShape() const { return out_; }
  /// Elements of the output.
  int64_t numel() const { return numel_; }
  /// Shape of operand 0 (a) or 1 (b).
  const Shape& operandShape(int which) const { return which == 0 ? a_ : b_; }
  /// True when operand `which` is repeated (has fewer elements than out).
  bool broadcasts(int which) const {
    return numelOf(operandShape(which)) != numel_;
  }

  /// Calls fn(o, ia, ib, n, sa, sb) once per output row: the row covers
  /// output elements [o, o+n); operand x's element i of the row is at
  /// ix + i*sx with sx in {0, 1}.
  template <class Fn>
  void forEachRow(Fn&& fn) const {
    forRows(0, rows(), fn);
  }
  /// Rows of the output (forEachRow's calls).
  int64_t rows() const {
    if (numel_ == 0) return 0;
    return dims_.empty() ? 1 : numel_ / dims_.back();
  }
  /// forEachRow for rows [row0, row1) only (rows are independent: threads
  /// may take disjoint ranges).
  template <class Fn>
  void forRows(int64_t row0, int64_t row1, Fn&& fn) const {
    if (row0 >= row1) return;
    const int r = static_cast<int>(dims_.size());
    if (r == 0) {
      fn(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0}, int64_t{0});
      return;
    }
    const int64_t n = dims_[r - 1], sa = sa_[r - 1], sb = sb_[r - 1];
    int64_t idx[kMaxDims] = {0};
    int64_t ia = 0, ib = 0;
    for (int64_t d = r - 2, rem = row0; d >= 0; --d) {  // the first row's position
      idx[d] = rem % dims_[d];
      rem /= dims_[d];
      ia += idx[d] * sa_[d];
      ib += idx[d] * sb_[d];
    }
    for (int64_t o = row0 * n; o < row1 * n; o += n) {
      fn(o, ia, ib, n, sa, sb);
      for (int d = r - 2; d >= 0; --d) {
        ia += sa_[d];
        ib += sb_[d];
        if (++idx[d] < dims_[d]) break;
        ia -= sa_[d] * dims_[d];
        ib -= sb_[d] * dims_[d];
        idx[d] = 0;
      }
    }
  }

  /// Sums the output-shaped `g` over the broadcast dims of operand `which`
  /// into `dst` (operand-shaped, overwritten).
  void reduceTo(int which, const float* g, float* dst) const;

 private:
  Shape a_, b_, out_;
  std::vector<int64_t> dims_, sa_, sb_;  // merged dims, outer -> inner
  int64_t numel_ = 0;
  bool ready_ = false;
};

/// out[k] = f(a[ia], b[ib]) over the plan (out has plan.numel() elements).
/// Output rows run over the threads (each element is written once, so any
/// split gives the same bits); `out` may be `a` when a is not broadcast.
template <class T, class F>
void broadcastApply(const BroadcastPlan& p, const T* a, const T* b, T* out, F f) {
  auto row = [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
    T* y = out + o;
    const T* x = a + ia;
    const T* z = b + ib;
    if (sa && sb) {
      for (int64_t i = 0; i < n; ++i) y[i] = f(x[i], z[i]);
    } else if (sa) {
      const T zv = *z;
      for (int64_t i = 0; i < n; ++i) y[i] = f(x[i], zv);
    } else if (sb) {
      const T xv = *x;
      for (int64_t i = 0; i < n; ++i) y[i] = f(xv, z[i]);
    } else {
      const T v = f(*x, *z);
      for (int64_t i = 0; i < n; ++i) y[i] = v;
    }
  };
  const int64_t rows = p.rows(), per_row = std::max<int64_t>(1, rows ? p.numel() / rows : 1);
  detail::parallelRange(rows, std::max<int64_t>(1, 32768 / per_row),
                        [&](int64_t r0, int64_t r1) { p.forRows(r0, r1, row); });
}

/// Gradient of operand `which`: dst[operand index] = sum over the output
/// elements mapping to it of f(g[k], a[ia], b[ib]). dst is overwritten.
template <class F>
void broadcastGrad(const BroadcastPlan& p, int which, const float* a,
                   const float* b, const float* g, float* dst, F f) {
  const bool acc = p.broadcasts(which);
  if (acc) std::memset(dst, 0, sizeof(float) * numelOf(p.operandShape(which)));
  p.forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa,
                   int64_t sb) {
    const float* gr = g + o;
    const float* x = a + ia;
    const float* z = b + ib;
    const int64_t sd = which == 0 ? sa : sb;
    float* d = dst + (which == 0 ? ia : ib);
    if (!acc && sa && sb) {  // one-to-one, both operands contiguous
      for (int64_t i = 0; i < n; ++i) d[i] = f(gr[i], x[i], z[i]);
    } else if (!acc) {  // one-to-one for `which`, the other one repeats
      for (int64_t i = 0; i < n; ++i) d[i] = f(gr[i], x[i * sa], z[i * sb]);
    } else if (sd) {
      for (int64_t i = 0; i < n; ++i) d[i] += f(gr[i], x[i * sa], z[i * sb]);
    } else if (sa) {  // `which` is b (stride 0); a runs along the row
      *d += laneSum(n, [&](int64_t i) { return f(gr[i], x[i], *z); });
    } else if (sb) {
      *d += laneSum(n, [&](int64_t i) { return f(gr[i], *x, z[i]); });
    } else {
      *d += laneSum(n, [&](int64_t i) { return f(gr[i], *x, *z); });
    }
  });
}

/// broadcastGrad for a repeated operand `which` (a weight), exactly: every
/// output element's f(g[k], a[ia], b[ib]) is added to `sum` (reset to the
/// operand's size) in fixed point, so the total does not depend on the order
/// or on how the batch is split over ranks (exact_sum.h).
template <class F>
void broadcastGradExact(const BroadcastPlan& p, int which, const float* a, const float* b,
                        const float* g, rank_reduction::FixedSum& sum, F f) {
  sum.reset(static_cast<size_t>(numelOf(p.operandShape(which))));
  p.forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
    const int64_t d = which == 0 ? ia : ib, sd = which == 0 ? sa : sb;
    for (int64_t i = 0; i < n; ++i)
      sum.add(static_cast<size_t>(d + i * sd), f(g[o + i], a[ia + i * sa], b[ib + i * sb]));
  });
}

}  // namespace slim::ops
