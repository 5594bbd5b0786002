// Strided walks of Einsum's layouts (see einsum_layout.h).
#include "trainer/ops/einsum_layout.h"

#include "trainer/ops/parallel.h"

namespace slim::ops::einsum {

void stridedSum(const float* src, float* dst, const std::vector<Dim>& outer,
                const std::vector<int64_t>& inner) {
  int64_t total = 1;
  for (const Dim& d : outer) total *= d.size;
  if (total == 0) return;
  const int r = static_cast<int>(outer.size());
  const int64_t n_in = static_cast<int64_t>(inner.size());
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n_in));
  detail::parallelRange(total, grain, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(r, 0);
    int64_t so = 0, dof = 0;
    for (int64_t rem = b, d = r - 1; d >= 0; --d) {
      idx[d] = rem % outer[d].size;
      rem /= outer[d].size;
      so += idx[d] * outer[d].src;
      dof += idx[d] * outer[d].dst;
    }
    const int64_t last = r > 0 ? outer[r - 1].size : 1;
    const int64_t ls = r > 0 ? outer[r - 1].src : 0, ld = r > 0 ? outer[r - 1].dst : 0;
    for (int64_t o = b; o < e;) {
      // The rest of the innermost row from idx[r - 1].
      const int64_t i0 = r > 0 ? idx[r - 1] : 0;
      const int64_t len = std::min(last - i0, e - o);
      if (inner.empty()) {
        for (int64_t i = 0; i < len; ++i) dst[dof + i * ld] = src[so + i * ls];
      } else {
        for (int64_t i = 0; i < len; ++i) {
          const float* p = src + so + i * ls;
          float s = 0.f;
          for (int64_t k = 0; k < n_in; ++k) s += p[inner[k]];
          dst[dof + i * ld] = s;
        }
      }
      o += len;
      if (o >= e) break;
      // Advance the odometer past the row.
      so += (len - 1) * ls;
      dof += (len - 1) * ld;
      if (r == 0) break;
      idx[r - 1] = last - 1;
      for (int d = r - 1; d >= 0; --d) {
        so += outer[d].src;
        dof += outer[d].dst;
        if (++idx[d] < outer[d].size) break;
        so -= outer[d].src * outer[d].size;
        dof -= outer[d].dst * outer[d].size;
        idx[d] = 0;
      }
    }
  });
}

std::vector<int64_t> offsetsOf(const std::vector<Dim>& dims) {
  std::vector<int64_t> off{0};
  for (const Dim& d : dims) {
    std::vector<int64_t> next;
    next.reserve(off.size() * static_cast<size_t>(d.size));
    for (int64_t o : off)
      for (int64_t i = 0; i < d.size; ++i) next.push_back(o + i * d.src);
    off = std::move(next);
  }
  return off;
}

}  // namespace slim::ops::einsum
