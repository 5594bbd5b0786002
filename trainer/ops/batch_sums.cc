// detail::sumDyDyx (parallel.h), compiled apart from its callers.
#include "trainer/ops/parallel.h"

namespace slim::ops::detail {

void sumDyDyx(const float* __restrict dy, const float* __restrict x, float m, int64_t n,
              float& sdy, float& sdyx) {
  float a[16] = {}, b[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      a[j] += dy[i + j];
      b[j] += dy[i + j] * (x[i + j] - m);
    }
  for (int j = 0; j < 8; ++j) { a[j] += a[j + 8]; b[j] += b[j + 8]; }
  for (int j = 0; j < 4; ++j) { a[j] += a[j + 4]; b[j] += b[j + 4]; }
  float s = (a[0] + a[2]) + (a[1] + a[3]);
  float t = (b[0] + b[2]) + (b[1] + b[3]);
  for (; i < n; ++i) {
    s += dy[i];
    t += dy[i] * (x[i] - m);
  }
  sdy = s;
  sdyx = t;
}

}  // namespace slim::ops::detail
