// The channel-vector depthwise kernel (see depthwise.cc): each image is
// transposed into phase planes blocked by 8 channels, and every position
// computes eight channels per vector.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "trainer/ops/depthwise_kernels.h"

namespace slim::ops::detail::depthwise {

namespace {

// Channel-blocked buffers: c channels in blocks of 8, each block (n, 8)
// contiguous, so element (i, ch) is at (ch / 8) * 8n + 8i + ch % 8. The
// kernels then stream through one block at a time.
//
// dst (blocked, n_dst positions) at positions pos[i] + off = src (c, n).
void toBlocked(const float* src, int64_t n, int64_t c, const int64_t* pos, int64_t off,
               float* dst, int64_t n_dst) {
  for (int64_t g = 0; g < c; g += 8) {
    const float* s = src + g * n;
    float* d = dst + g * n_dst + off * 8;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      Block8 b;
      for (int k = 0; k < 8; ++k) b.load(k, s + k * n + i);
      b.transpose();
      for (int k = 0; k < 8; ++k) b.store(k, d + pos[i + k] * 8);
    }
    for (; i < n; ++i)
      for (int64_t k = 0; k < 8; ++k) d[pos[i] * 8 + k] = s[k * n + i];
  }
}

// dst (c, n) = src (blocked, n positions); kPlusZero writes 0 + src (a
// -0 becomes +0), the bits of adding src to a zeroed dst.
template <bool kPlusZero>
void fromBlocked(const float* src, int64_t n, int64_t c, float* dst) {
  for (int64_t g = 0; g < c; g += 8) {
    const float* s = src + g * n;
    float* d = dst + g * n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      Block8 b;
      for (int k = 0; k < 8; ++k) b.load(k, s + (i + k) * 8);
      b.transpose();
      for (int k = 0; k < 8; ++k)
        kPlusZero ? b.storePlusZero(k, d + k * n + i) : b.store(k, d + k * n + i);
    }
    for (; i < n; ++i)
      for (int64_t k = 0; k < 8; ++k) {
        float& o = d[k * n + i];
        o = kPlusZero ? 0.f + s[i * 8 + k] : s[i * 8 + k];
      }
  }
}

// Blocked zero-padded phase planes of x (c, H, W).
void blockedPlanes(const DepthwisePlan& pl, const float* x, int64_t c, float* planes) {
  const int64_t n = pl.total();
  for (int64_t g = 0; g < c; g += 8)
    for (int64_t pos : pl.border) std::memset(planes + g * n + pos * 8, 0, sizeof(float) * 8);
  toBlocked(x, pl.ah.in * pl.aw.in, c, pl.in_pos.data(), 0, planes, n);
}

// wt[t * c + ch] = w[ch * KK + t]
void tapMajor(const float* w, int64_t c, int64_t KK, float* wt) {
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t t = 0; t < KK; ++t) wt[t * c + ch] = w[ch * KK + t];
}

// acc[v] += sum_j wt[widx[j] + 8v] * src[soff[j] + vs * v] (fused, j
// ascending) for NV channel blocks vs floats apart: NV independent chains
// hide the fma latency.
template <int NV>
inline void tapSums(const float* wt, const float* src, int64_t vs, const int64_t* widx,
                    const int64_t* soff, int64_t n, V8* acc) {
  for (int64_t j = 0; j < n; ++j) {
    const float* wj = wt + widx[j];
    const float* sj = src + soff[j];
    for (int v = 0; v < NV; ++v) acc[v] = fmaV8(loadV8(wj + 8 * v), loadV8(sj + vs * v), acc[v]);
  }
}

// tapSums for two positions at once (src0, src1; accumulators acc[0, NV) and
// acc[NV, 2 NV)): each weight vector loaded once for both, and 2 NV
// independent chains. Each accumulator sees the same fmas in the same order.
template <int NV>
inline void tapSumsPair(const float* wt, const float* src0, const float* src1, int64_t vs,
                        const int64_t* widx, const int64_t* soff, int64_t n, V8* acc) {
  for (int64_t j = 0; j < n; ++j) {
    const float* wj = wt + widx[j];
    const float* s0 = src0 + soff[j];
    const float* s1 = src1 + soff[j];
    for (int v = 0; v < NV; ++v) {
      const V8 w = loadV8(wj + 8 * v);
      acc[v] = fmaV8(w, loadV8(s0 + vs * v), acc[v]);
      acc[NV + v] = fmaV8(w, loadV8(s1 + vs * v), acc[NV + v]);
    }
  }
}

// Calls f.operator()<NV>(g) over channel tiles [g, g + 8 NV) covering c.
template <class F>
inline void channelTiles(int64_t c, F&& f) {
  int64_t g = 0;
  for (; g + 32 <= c; g += 32) f.template operator()<4>(g);
  switch ((c - g) / 8) {
    case 3: f.template operator()<3>(g); break;
    case 2: f.template operator()<2>(g); break;
    case 1: f.template operator()<1>(g); break;
    default: break;
  }
}

}  // namespace

void forwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                           const float* bias, int64_t c, float* y,
                           std::vector<float>& scratch) {
  const int64_t P = pl.ah.out * pl.aw.out, KK = pl.ah.kernel * pl.aw.kernel, T = pl.total();
  // scratch: planes (blocked, T) | out (blocked, P) | wt (KK, c)
  const size_t need = static_cast<size_t>((T + P + KK) * c);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* out = planes + T * c;
  float* wt = out + P * c;
  blockedPlanes(pl, x, c, planes);
  tapMajor(w, c, KK, wt);
  std::vector<int64_t> widx(KK), soff(KK);
  for (int64_t t = 0; t < KK; ++t) {
    widx[t] = t * c;
    soff[t] = pl.taps[t] * 8;
  }
  channelTiles(c, [&]<int NV>(int64_t g) {
    const float* base = planes + g * T;
    float* o = out + g * P;
    int64_t p = 0;
    for (; p + 2 <= P; p += 2) {
      V8 acc[2 * NV];
      for (int v = 0; v < NV; ++v) acc[v] = acc[NV + v] = bias ? loadV8(bias + g + 8 * v) : V8{};
      tapSumsPair<NV>(wt + g, base + pl.out_pos[p] * 8, base + pl.out_pos[p + 1] * 8, 8 * T,
                      widx.data(), soff.data(), KK, acc);
      for (int v = 0; v < NV; ++v) {
        storeV8(o + 8 * (v * P + p), acc[v]);
        storeV8(o + 8 * (v * P + p + 1), acc[NV + v]);
      }
    }
    for (; p < P; ++p) {
      V8 acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = bias ? loadV8(bias + g + 8 * v) : V8{};
      tapSums<NV>(wt + g, base + pl.out_pos[p] * 8, 8 * T, widx.data(), soff.data(), KK, acc);
      for (int v = 0; v < NV; ++v) storeV8(o + 8 * (v * P + p), acc[v]);
    }
  });
  fromBlocked<false>(out, P, c, y);
}

void backwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                            const float* dy, int64_t c, float* dx, float* dw,
                            std::vector<float>& scratch) {
  const int64_t HW = pl.ah.in * pl.aw.in, P = pl.ah.out * pl.aw.out, Q = pl.wide();
  const int64_t KK = pl.ah.kernel * pl.aw.kernel, T = pl.total();
  // dyw: the wide dy with zero scratch columns and zero margins that the dx
  // gather reads past both ends (DepthwisePlan::dy_lo / dy_hi).
  const int64_t D = pl.dy_lo + Q + pl.dy_hi;
  // scratch: planes (blocked, T) | dyw (blocked, D) | dxn (blocked, HW) | wt (KK, c)
  const size_t need = static_cast<size_t>((T + D + HW + KK) * c);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* dyw = planes + T * c;
  float* dxn = dyw + D * c;
  float* wt = dxn + HW * c;
  for (int64_t g = 0; g < c; g += 8) {
    float* b = dyw + g * D;
    std::memset(b, 0, sizeof(float) * 8 * pl.dy_lo);
    std::memset(b + 8 * (pl.dy_lo + Q), 0, sizeof(float) * 8 * pl.dy_hi);
    for (int64_t q : pl.scratch_q) std::memset(b + 8 * (pl.dy_lo + q), 0, sizeof(float) * 8);
  }
  toBlocked(dy, P, c, pl.out_pos.data(), pl.dy_lo, dyw, D);
  if (dw) {
    blockedPlanes(pl, x, c, planes);
    const int64_t Q8 = Q / 8 * 8, rounded_end = Q8 + (Q - Q8) / 4 * 4;
    for (int64_t g = 0; g < c; g += 8) {
      const float* d = dyw + g * D + 8 * pl.dy_lo;
      for (int64_t t = 0; t < KK; ++t) {
        const float* xs = planes + g * T + 8 * pl.taps[t];
        V8 a[8] = {};
        for (int64_t q = 0; q < Q8; q += 8)
          for (int j = 0; j < 8; ++j)
            a[j] = fmaV8(loadV8(d + 8 * (q + j)), loadV8(xs + 8 * (q + j)), a[j]);
        V8 s = foldLanes(a);
        for (int64_t q = Q8; q < Q; ++q)
          s = tailTerm(s, loadV8(d + 8 * q), loadV8(xs + 8 * q), q < rounded_end);
        for (int k = 0; k < 8; ++k) dw[(g + k) * KK + t] += s[k];
      }
    }
  }
  if (!dx) return;
  tapMajor(w, c, KK, wt);
  const int64_t nt = static_cast<int64_t>(pl.phase_tap.size());
  std::vector<int64_t> widx(nt), soff(nt);
  for (int64_t j = 0; j < nt; ++j) {
    widx[j] = pl.phase_tap[j] * c;
    soff[j] = -pl.phase_off[j] * 8;
  }
  channelTiles(c, [&]<int NV>(int64_t g) {
    const float* d = dyw + g * D + 8 * pl.dy_lo;
    float* o = dxn + g * HW;
    for (int64_t i = 0; i < HW; ++i) {
      const int64_t k = pl.in_phase[i];
      const int64_t j0 = pl.phase_begin[k], n = pl.phase_begin[k + 1] - j0;
      if (i + 1 < HW && pl.in_phase[i + 1] == k) {  // two cells of one phase plane
        V8 acc[2 * NV] = {};
        tapSumsPair<NV>(wt + g, d + 8 * (pl.in_pos[i] - k * pl.plane),
                        d + 8 * (pl.in_pos[i + 1] - k * pl.plane), 8 * D, widx.data() + j0,
                        soff.data() + j0, n, acc);
        for (int v = 0; v < NV; ++v) {
          storeV8(o + 8 * (v * HW + i), acc[v]);
          storeV8(o + 8 * (v * HW + i + 1), acc[NV + v]);
        }
        ++i;
        continue;
      }
      V8 acc[NV] = {};
      tapSums<NV>(wt + g, d + 8 * (pl.in_pos[i] - k * pl.plane), 8 * D, widx.data() + j0,
                  soff.data() + j0, n, acc);
      for (int v = 0; v < NV; ++v) storeV8(o + 8 * (v * HW + i), acc[v]);
    }
  });
  fromBlocked<true>(dxn, HW, c, dx);
}

}  // namespace slim::ops::detail::depthwise
