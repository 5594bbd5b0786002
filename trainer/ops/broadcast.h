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
#include "trainer/rank_reduction/sample_groups.h"

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

  /// forEachRow for output elements [o0, o1) only: the first and the last
  /// row may be cut (fn gets the piece's offset, operand positions and
  /// length). Elements are independent: threads may take disjoint ranges.
  template <class Fn>
  void forElements(int64_t o0, int64_t o1, Fn&& fn) const {
    if (o0 >= o1) return;
    const int64_t n = dims_.empty() ? 1 : dims_.back();
    forRows(o0 / n, (o1 + n - 1) / n,
            [&](int64_t o, int64_t ia, int64_t ib, int64_t len, int64_t sa, int64_t sb) {
              const int64_t b = std::max(o, o0), e = std::min(o + len, o1), k = b - o;
              fn(b, ia + k * sa, ib + k * sb, e - b, sa, sb);
            });
  }
  /// forEachRow, every row in order, each cut to the elements whose
  /// operand-`which` element lies in [d0, d1) (a row along which that operand
  /// stays put is passed whole or skipped). A sum into operand `which`'s
  /// elements run this way adds each element's terms in forEachRow's order,
  /// so threads taking disjoint ranges [d0, d1) give the bits of one sweep.
  template <class Fn>
  void forOperandRange(int which, int64_t d0, int64_t d1, Fn&& fn) const {
    if (d0 >= d1) return;
    forEachRow([&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
      const int64_t d = which == 0 ? ia : ib, sd = which == 0 ? sa : sb;
      int64_t b = 0, e = n;
      if (sd == 0) {
        if (d < d0 || d >= d1) return;
      } else {
        b = std::max<int64_t>(0, d0 - d);
        e = std::min(n, d1 - d);
        if (b >= e) return;
      }
      fn(o + b, ia + b * sa, ib + b * sb, e - b, sa, sb);
    });
  }
  /// Operand elements per thread for a sum into operand `which` run with
  /// forOperandRange: about `grain` output elements each.
  int64_t operandGrain(int which, int64_t grain) const {
    const int64_t nd = numelOf(operandShape(which));
    return std::max<int64_t>(1, grain * nd / std::max<int64_t>(1, numel_));
  }

  /// Sums the output-shaped `g` over the broadcast dims of operand `which`
  /// into `dst` (operand-shaped, overwritten). Operand elements run over the
  /// threads, each summed in forEachRow's order (forOperandRange).
  void reduceTo(int which, const float* g, float* dst) const;

 private:
  Shape a_, b_, out_;
  std::vector<int64_t> dims_, sa_, sb_;  // merged dims, outer -> inner
  int64_t numel_ = 0;
  bool ready_ = false;
};

/// out[k] = f(a[ia], b[ib]) over the plan (out has plan.numel() elements).
/// Output element ranges run over the threads, cutting rows where they fall
/// (each element is written once, so any split gives the same bits): a
/// same-shape or scalar operation is one row. `out` may be `a` when a is not
/// broadcast. `grain`: output elements per thread at least (parallel.h; a
/// costly f such as std::pow takes detail::kGrainCostly).
template <class T, class F>
void broadcastApply(const BroadcastPlan& p, const T* a, const T* b, T* out, F f,
                    int64_t grain = detail::kGrainCheap) {
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
  detail::parallelRange(p.numel(), grain,
                        [&](int64_t o0, int64_t o1) { p.forElements(o0, o1, row); });
}

/// Gradient of operand `which`: dst[operand index] = sum over the output
/// elements mapping to it of f(g[k], a[ia], b[ib]). dst is overwritten.
/// On the threads: output element ranges when the operand is not repeated
/// (one term per element), else operand element ranges, each element's terms
/// added in forEachRow's order (forOperandRange): the bits of one sweep.
/// `grain` as broadcastApply's.
template <class F>
void broadcastGrad(const BroadcastPlan& p, int which, const float* a, const float* b,
                   const float* g, float* dst, F f, int64_t grain = detail::kGrainCheap) {
  const bool acc = p.broadcasts(which);
  auto row = [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
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
  };
  if (!acc) {
    detail::parallelRange(p.numel(), grain,
                          [&](int64_t o0, int64_t o1) { p.forElements(o0, o1, row); });
    return;
  }
  detail::parallelRange(numelOf(p.operandShape(which)), p.operandGrain(which, grain),
                        [&](int64_t d0, int64_t d1) {
                          std::memset(dst + d0, 0, sizeof(float) * (d1 - d0));
                          p.forOperandRange(which, d0, d1, row);
                        });
}

/// broadcastGrad for a repeated operand `which` (a weight), exactly: every
/// output element's f(g[k], a[ia], b[ib]) is added to `sum` (reset to the
/// operand's size, its shift kept) in fixed point, so the total does not
/// depend on the order or on how the batch is split over ranks
/// (exact_sum.h). Operand element ranges run over the threads
/// (forOperandRange), each sum on one thread.
template <class F>
void broadcastGradExact(const BroadcastPlan& p, int which, const float* a, const float* b,
                        const float* g, rank_reduction::FixedSum& sum, F f) {
  const int64_t nd = numelOf(p.operandShape(which));
  sum.reset(static_cast<size_t>(nd));
  rank_reduction::Fixed* s = sum.data();
  bool bad = false;
  // A fixed-point conversion per term: several ns an element.
  detail::parallelRange(
      nd, p.operandGrain(which, detail::kGrainCostly), [&](int64_t d0, int64_t d1) {
        bool my_bad = false;
        p.forOperandRange(
            which, d0, d1,
            [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
              const int64_t d = which == 0 ? ia : ib, sd = which == 0 ? sa : sb;
              if (sd == 1) {  // a contiguous run of sums: the terms, then addFixedRow
                constexpr int64_t kRun = 256;
                float t[kRun];
                for (int64_t i0 = 0; i0 < n; i0 += kRun) {
                  const int64_t len = std::min(kRun, n - i0);
                  for (int64_t i = i0; i < i0 + len; ++i)
                    t[i - i0] = f(g[o + i], a[ia + i * sa], b[ib + i * sb]);
                  rank_reduction::addFixedRow(s + d + i0, t, len, sum.shift(), &my_bad);
                }
                return;
              }
              for (int64_t i = 0; i < n; ++i)
                s[d + i * sd] += sum.convert(f(g[o + i], a[ia + i * sa], b[ib + i * sb]), &my_bad);
            });
        if (my_bad) {
#pragma omp atomic write
          bad = true;
        }
      });
  if (bad) sum.setBad();
}

/// Column sums of a [rows, k] matrix by groups of samples: p[g * k + j] (p
/// holds groups.count * k floats) = the float sum, in row order, of term(r,
/// j) over group g's rows r (SampleGroups), to be added in fixed point by
/// Op::finishPartials: the rank-exact reduction of a bias or a norm's scale
/// (a fixed-point term per element costs several ns). Columns run over the
/// threads, each column's sums on one thread: the same bits for any count.
template <class F>
void groupColumnSums(const rank_reduction::SampleGroups& groups, int64_t k, float* p, F term) {
  const int64_t rows = std::max<int64_t>(1, groups.rows(0));
  detail::parallelRange(k, std::max<int64_t>(16, detail::kGrainCheap / rows),
                        [&](int64_t j0, int64_t j1) {
                          for (int64_t g = 0; g < groups.count; ++g) {
                            float* pg = p + g * k;
                            std::fill(pg + j0, pg + j1, 0.f);
                            for (int64_t o = 0; o < groups.outer; ++o)
                              for (int64_t r = groups.runStart(g, o);
                                   r < groups.runStart(g, o) + groups.runRows(g); ++r)
                                for (int64_t j = j0; j < j1; ++j) pg[j] += term(r, j);
                          }
                        });
}

}  // namespace slim::ops
