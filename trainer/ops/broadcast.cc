// Broadcast planning: right-align both shapes, give broadcast dims stride 0,
// drop size-1 output dims and merge adjacent dims whose strides chain.
#include "trainer/ops/broadcast.h"

#include <algorithm>

#include "trainer/ops/fast_math.h"

namespace slim::ops {

Shape broadcastShape(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else {
      SLIM_THROW(ShapeError, "shapes ", shapeStr(a), " and ", shapeStr(b),
                 " do not broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    }
  }
  return out;
}

int normalizeAxis(int64_t axis, int rank, const char* what, int rank_extra) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank + rank_extra)
    SLIM_THROW(ModelError, what, ": axis ", axis, " out of range for rank ", rank);
  return static_cast<int>(a);
}

void BroadcastPlan::init(const Shape& a, const Shape& b) {
  a_ = a;
  b_ = b;
  out_ = broadcastShape(a, b);
  numel_ = numelOf(out_);
  const size_t r = out_.size();
  // Contiguous strides of each operand, aligned to the output's dims.
  std::vector<int64_t> fa(r, 0), fb(r, 0);
  int64_t st_a = 1, st_b = 1;
  for (size_t k = 0; k < r; ++k) {
    const size_t i = r - 1 - k;
    if (k < a.size()) {
      const int64_t d = a[a.size() - 1 - k];
      fa[i] = d == 1 ? 0 : st_a;
      st_a *= d;
    }
    if (k < b.size()) {
      const int64_t d = b[b.size() - 1 - k];
      fb[i] = d == 1 ? 0 : st_b;
      st_b *= d;
    }
  }
  dims_.clear();
  sa_.clear();
  sb_.clear();
  for (size_t i = 0; i < r; ++i) {
    if (out_[i] == 1) continue;
    if (!dims_.empty() && sa_.back() == fa[i] * out_[i] &&
        sb_.back() == fb[i] * out_[i]) {
      dims_.back() *= out_[i];
      sa_.back() = fa[i];
      sb_.back() = fb[i];
      continue;
    }
    dims_.push_back(out_[i]);
    sa_.push_back(fa[i]);
    sb_.push_back(fb[i]);
  }
  SLIM_ENFORCE_LE(static_cast<int>(dims_.size()), kMaxDims,
                  "broadcast of ", shapeStr(a), " and ", shapeStr(b),
                  ": too many dimensions");
  ready_ = true;
}

void BroadcastPlan::reduceTo(int which, const float* g, float* dst) const {
  const int64_t n_dst = numelOf(operandShape(which));
  if (!broadcasts(which)) {
    detail::parallelCopy(dst, g, n_dst * static_cast<int64_t>(sizeof(float)));
    return;
  }
  auto row = [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
    const float* gr = g + o;
    const int64_t sd = which == 0 ? sa : sb;
    float* d = dst + (which == 0 ? ia : ib);
    if (sd) {
      for (int64_t i = 0; i < n; ++i) d[i] += gr[i];
    } else {
      *d += laneSum(n, [gr](int64_t i) { return gr[i]; });
    }
  };
  detail::parallelRange(n_dst, operandGrain(which, detail::kGrainCheap),
                        [&](int64_t d0, int64_t d1) {
                          std::memset(dst + d0, 0, sizeof(float) * (d1 - d0));
                          forOperandRange(which, d0, d1, row);
                        });
}

}  // namespace slim::ops
