// Kernels behind Conv, Gemm/MatMul and the pools: Eigen GEMM on row-major
// maps, window geometry, im2col/col2im and direct depthwise convolution
// (polyphase planes, so every kernel tap is one long contiguous AXPY).
#include "trainer/ops/conv_kernels.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>

#include "trainer/core/error.h"

namespace slim::ops::detail {
namespace {

using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const MatR, 0, Eigen::OuterStride<>>;
using MMap = Eigen::Map<MatR, 0, Eigen::OuterStride<>>;

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceilDiv(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

template <class AX, class BX>
void gemmAssign(MMap& c, const AX& a, const BX& b, float alpha, float beta) {
  if (beta == 0.f) {
    c.noalias() = alpha * a * b;
  } else {
    if (beta != 1.f) c *= beta;
    c.noalias() += alpha * a * b;
  }
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  MMap cm(c, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0) {
    if (beta == 0.f) cm.setZero(); else cm *= beta;
    return;
  }
  // Stored shapes: A is [m,k] or [k,m] (ta); B is [k,n] or [n,k] (tb).
  CMap am(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  CMap bm(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  if (!ta && !tb) gemmAssign(cm, am, bm, alpha, beta);
  else if (ta && !tb) gemmAssign(cm, am.transpose(), bm, alpha, beta);
  else if (!ta && tb) gemmAssign(cm, am, bm.transpose(), alpha, beta);
  else gemmAssign(cm, am.transpose(), bm.transpose(), alpha, beta);
}

WindowAttrs readWindowAttrs(const Attrs& a, bool need_kernel) {
  WindowAttrs w;
  w.auto_pad = a.getString("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" &&
      w.auto_pad != "SAME_LOWER")
    SLIM_THROW(ModelError, "unknown auto_pad '", w.auto_pad, "'");
  w.kernel = a.getInts("kernel_shape", {});
  if (need_kernel && w.kernel.size() != 2)
    SLIM_THROW(ModelError, "kernel_shape must have 2 entries (2-D only), got ",
               w.kernel.size());
  if (!w.kernel.empty() && w.kernel.size() != 2)
    SLIM_THROW(ModelError, "only 2-D windows are supported; kernel_shape has ",
               w.kernel.size(), " entries");
  w.strides = a.getInts("strides", {1, 1});
  w.dilations = a.getInts("dilations", {1, 1});
  w.pads = a.getInts("pads", {0, 0, 0, 0});
  w.ceil_mode = a.getInt("ceil_mode", 0) != 0;
  if (w.strides.size() != 2 || w.dilations.size() != 2 || w.pads.size() != 4)
    SLIM_THROW(ModelError, "only 2-D windows are supported: strides ", w.strides.size(),
               ", dilations ", w.dilations.size(), ", pads ", w.pads.size(),
               " entries (want 2, 2, 4)");
  for (int i = 0; i < 2; ++i) {
    if (w.strides[i] < 1 || w.dilations[i] < 1)
      SLIM_THROW(ModelError, "strides and dilations must be >= 1, got strides[", i,
                 "]=", w.strides[i], " dilations[", i, "]=", w.dilations[i]);
    if (!w.kernel.empty() && w.kernel[i] < 1)
      SLIM_THROW(ModelError, "kernel_shape[", i, "]=", w.kernel[i], " must be >= 1");
  }
  for (int64_t p : w.pads)
    if (p < 0) SLIM_THROW(ModelError, "negative pads are not supported, got ", p);
  return w;
}

static void resolveAxis(const WindowAttrs& wa, int i, int64_t in, int64_t k, Axis& ax) {
  ax.in = in;
  ax.kernel = k;
  ax.stride = wa.strides[i];
  ax.dilation = wa.dilations[i];
  const int64_t ext = ax.extent();
  if (wa.auto_pad == "SAME_UPPER" || wa.auto_pad == "SAME_LOWER") {
    ax.out = ceilDiv(in, ax.stride);
    const int64_t total = std::max<int64_t>(0, (ax.out - 1) * ax.stride + ext - in);
    const int64_t small = total / 2;
    ax.pad_begin = wa.auto_pad == "SAME_UPPER" ? small : total - small;
    ax.pad_end = total - ax.pad_begin;
    return;
  }
  if (wa.auto_pad == "VALID") {
    ax.pad_begin = ax.pad_end = 0;
  } else {
    ax.pad_begin = wa.pads[i];
    ax.pad_end = wa.pads[i + 2];
  }
  const int64_t span = in + ax.pad_begin + ax.pad_end - ext;
  if (span < 0) { ax.out = 0; return; }
  if (wa.ceil_mode) {
    ax.out = ceilDiv(span, ax.stride) + 1;
    // The last window must start inside the input or the leading padding.
    if ((ax.out - 1) * ax.stride >= in + ax.pad_begin) --ax.out;
  } else {
    ax.out = span / ax.stride + 1;
  }
}

void resolveAxes(const WindowAttrs& wa, int64_t h, int64_t w, int64_t kh, int64_t kw,
                 const std::string& label, Axis& ah, Axis& aw) {
  resolveAxis(wa, 0, h, kh, ah);
  resolveAxis(wa, 1, w, kw, aw);
  if (ah.out < 1 || aw.out < 1)
    SLIM_THROW(ShapeError, label, ": empty output for input ", h, "x", w, ", kernel ",
               kh, "x", kw, ", pads [", ah.pad_begin, ",", aw.pad_begin, ",", ah.pad_end,
               ",", aw.pad_end, "], strides ", ah.stride, "x", aw.stride,
               ", dilations ", ah.dilation, "x", aw.dilation);
}

void tapRange(const Axis& a, int64_t t, int64_t& lo, int64_t& hi) {
  const int64_t off = a.pad_begin - t * a.dilation;  // o*stride >= off
  // lo is clamped to out too: a padded kernel larger than the input can put
  // the first valid output past the end (found by the ONNX fuzzer).
  lo = std::min<int64_t>(a.out, std::max<int64_t>(0, ceilDiv(off, a.stride)));
  hi = std::min<int64_t>(a.out, ceilDiv(a.in + off, a.stride));
  if (hi < lo) hi = lo;
}

void im2col(const float* x, int64_t c, const Axis& ah, const Axis& aw, float* col) {
  const int64_t H = ah.in, W = aw.in, OH = ah.out, OW = aw.out, sW = aw.stride;
  for (int64_t ci = 0; ci < c; ++ci) {
    const float* xc = x + ci * H * W;
    for (int64_t kh = 0; kh < ah.kernel; ++kh) {
      int64_t h_lo, h_hi;
      tapRange(ah, kh, h_lo, h_hi);
      for (int64_t kw = 0; kw < aw.kernel; ++kw, col += OH * OW) {
        int64_t w_lo, w_hi;
        tapRange(aw, kw, w_lo, w_hi);
        const int64_t w_off = kw * aw.dilation - aw.pad_begin;
        std::memset(col, 0, sizeof(float) * h_lo * OW);
        for (int64_t oh = h_lo; oh < h_hi; ++oh) {
          float* dst = col + oh * OW;
          const float* src = xc + (oh * ah.stride - ah.pad_begin + kh * ah.dilation) * W + w_off;
          std::fill(dst, dst + w_lo, 0.f);
          if (sW == 1) {
            std::memcpy(dst + w_lo, src + w_lo, sizeof(float) * (w_hi - w_lo));
          } else {
            for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow] = src[ow * sW];
          }
          std::fill(dst + w_hi, dst + OW, 0.f);
        }
        std::memset(col + h_hi * OW, 0, sizeof(float) * (OH - h_hi) * OW);
      }
    }
  }
}

void col2im(const float* col, int64_t c, const Axis& ah, const Axis& aw, float* dx) {
  const int64_t H = ah.in, W = aw.in, OH = ah.out, OW = aw.out, sW = aw.stride;
  for (int64_t ci = 0; ci < c; ++ci) {
    float* dxc = dx + ci * H * W;
    for (int64_t kh = 0; kh < ah.kernel; ++kh) {
      int64_t h_lo, h_hi;
      tapRange(ah, kh, h_lo, h_hi);
      for (int64_t kw = 0; kw < aw.kernel; ++kw, col += OH * OW) {
        int64_t w_lo, w_hi;
        tapRange(aw, kw, w_lo, w_hi);
        const int64_t w_off = kw * aw.dilation - aw.pad_begin;
        for (int64_t oh = h_lo; oh < h_hi; ++oh) {
          const float* src = col + oh * OW;
          float* dst = dxc + (oh * ah.stride - ah.pad_begin + kh * ah.dilation) * W + w_off;
          if (sW == 1) {
            for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow * sW] += src[ow];
          }
        }
      }
    }
  }
}

// Depthwise convolution by polyphase decomposition: the zero-padded input
// plane is split into sh*sw phase planes (row phase a, column phase b) of
// Hh x Wh, phase(a,b)[i][j] = xpad[i*sh + a][j*sw + b]. Tap (kh, kw) of any
// stride/dilation then reads phase planes at a constant offset from the output
// position when the output is laid out "wide" (OH rows of Wh): every tap is one
// contiguous AXPY (forward, dx) or dot product (dw) of length OH*Wh, which
// vectorises well even for 7x7 planes. Columns OW..Wh-1 of the wide output are
// scratch; backward zeroes them in dy so they contribute nothing.
namespace {

struct Phases {
  int64_t sh, sw, Hh, Wh, plane;  // plane: floats per phase plane incl. slack
  int64_t total() const { return sh * sw * plane; }
};

Phases phasesOf(const Axis& ah, const Axis& aw) {
  Phases p;
  p.sh = ah.stride;
  p.sw = aw.stride;
  p.Hh = ceilDiv(ah.pad_begin + ah.in + ah.pad_end, p.sh);
  p.Wh = ceilDiv(aw.pad_begin + aw.in + aw.pad_end, p.sw);
  // Slack: wide-output scratch columns may read up to Wh past the last row.
  p.plane = (p.Hh + 1) * p.Wh + 8;
  return p;
}

// First element read by tap (kh, kw) for wide output position 0.
int64_t tapOffset(const Phases& p, const Axis& ah, const Axis& aw, int64_t kh, int64_t kw) {
  const int64_t rh = kh * ah.dilation, rw = kw * aw.dilation;
  return ((rh % p.sh) * p.sw + rw % p.sw) * p.plane + (rh / p.sh) * p.Wh + rw / p.sw;
}

// Offsets of all taps (kh*KW + kw), computed once per call: the divisions in
// tapOffset would otherwise dominate small planes. Kernels up to 8x8 use the
// inline array, larger ones a heap buffer.
class TapTable {
 public:
  TapTable(const Phases& p, const Axis& ah, const Axis& aw) {
    const int64_t n = ah.kernel * aw.kernel;
    if (n > kInline) heap_.resize(n);
    data_ = n > kInline ? heap_.data() : inline_;
    for (int64_t kh = 0; kh < ah.kernel; ++kh)
      for (int64_t kw = 0; kw < aw.kernel; ++kw)
        data_[kh * aw.kernel + kw] = tapOffset(p, ah, aw, kh, kw);
  }
  int64_t operator[](int64_t t) const { return data_[t]; }

 private:
  static constexpr int64_t kInline = 64;
  int64_t inline_[kInline];
  std::vector<int64_t> heap_;
  int64_t* data_;
};

// Visits the input columns of one padded row by phase: calls
// f(b, j, iw) for every iw in [0, W) with iw + pad = j*sw + b. Stride 2 (the
// common downsampling case) gets a dedicated loop the compiler vectorises.
template <class F2, class F>
void forColumns(const Axis& aw, int64_t sw, F2&& pair, F&& f) {
  const int64_t W = aw.in, pl = aw.pad_begin;
  if (sw == 2) {
    // Interior j: both iw = 2j - pl and 2j + 1 - pl inside [0, W).
    const int64_t j_lo = (pl + 1) / 2, j_hi = (W + pl - 1) / 2;  // [j_lo, j_hi)
    for (int64_t iw = 0; iw < std::min<int64_t>(W, 2 * j_lo - pl); ++iw)
      f((iw + pl) % 2, (iw + pl) / 2, iw);
    if (j_hi > j_lo) pair(j_lo, j_hi, 2 * j_lo - pl);
    for (int64_t iw = std::max<int64_t>(0, 2 * std::max(j_hi, j_lo) - pl); iw < W; ++iw)
      f((iw + pl) % 2, (iw + pl) / 2, iw);
    return;
  }
  for (int64_t iw = 0; iw < W; ++iw) f((iw + pl) % sw, (iw + pl) / sw, iw);
}

// planes = phases of the zero-padded x (H, W). Only interior cells are
// written: the caller zeroes the planes once, borders stay zero.
void splitPhases(const float* x, const Axis& ah, const Axis& aw, const Phases& p,
                 float* planes) {
  for (int64_t ih = 0; ih < ah.in; ++ih) {
    const int64_t r = ih + ah.pad_begin;
    const float* __restrict xr = x + ih * aw.in;
    float* row0 = planes + (r % p.sh) * p.sw * p.plane + (r / p.sh) * p.Wh;
    if (p.sw == 1) {
      std::memcpy(row0 + aw.pad_begin, xr, sizeof(float) * aw.in);
      continue;
    }
    forColumns(
        aw, p.sw,
        [&](int64_t j0, int64_t j1, int64_t iw0) {
          float* __restrict d0 = row0;
          float* __restrict d1 = row0 + p.plane;
          const float* __restrict xs = xr + iw0 - 2 * j0;
          for (int64_t j = j0; j < j1; ++j) {
            d0[j] = xs[2 * j];
            d1[j] = xs[2 * j + 1];
          }
        },
        [&](int64_t b, int64_t j, int64_t iw) { row0[b * p.plane + j] = xr[iw]; });
  }
}

// dx (H, W) += the interior of the padded image whose phases are `planes`.
void mergePhases(const float* planes, const Axis& ah, const Axis& aw, const Phases& p,
                 float* dx) {
  for (int64_t ih = 0; ih < ah.in; ++ih) {
    const int64_t r = ih + ah.pad_begin;
    float* __restrict dr = dx + ih * aw.in;
    const float* row0 = planes + (r % p.sh) * p.sw * p.plane + (r / p.sh) * p.Wh;
    if (p.sw == 1) {
      const float* __restrict src = row0 + aw.pad_begin;
      for (int64_t iw = 0; iw < aw.in; ++iw) dr[iw] += src[iw];
      continue;
    }
    forColumns(
        aw, p.sw,
        [&](int64_t j0, int64_t j1, int64_t iw0) {
          const float* __restrict s0 = row0;
          const float* __restrict s1 = row0 + p.plane;
          float* __restrict ds = dr + iw0 - 2 * j0;
          for (int64_t j = j0; j < j1; ++j) {
            ds[2 * j] += s0[j];
            ds[2 * j + 1] += s1[j];
          }
        },
        [&](int64_t b, int64_t j, int64_t iw) { dr[iw] += row0[b * p.plane + j]; });
  }
}

float dot(const float* a, const float* b, int64_t n) {
  return Eigen::Map<const Eigen::VectorXf>(a, n).dot(Eigen::Map<const Eigen::VectorXf>(b, n));
}

void axpy(float a, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// y[q] = b + sum_t w[t] * planes[taps[t] + q] for T taps in one pass (same
// summation order as T successive AXPYs onto b).
template <int T>
void fusedTapsForward(const float* planes, const TapTable& taps, const float* w, float b,
                      float* __restrict y, int64_t Q) {
  const float* src[T];
  float wt[T];
  for (int t = 0; t < T; ++t) { src[t] = planes + taps[t]; wt[t] = w[t]; }
  for (int64_t q = 0; q < Q; ++q) {
    float acc = b;
    for (int t = 0; t < T; ++t) acc += wt[t] * src[t][q];
    y[q] = acc;
  }
}

// dw[t] += sum_q dy[q] * planes[taps[t] + q] for T taps in one pass over dy:
// 8 interleaved partial sums per tap (GCC vector extension), combined in a
// fixed order.
typedef float V8 __attribute__((vector_size(32)));
inline V8 loadV8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Gather form of the dx scatter "dst[off[t] + q] += w[t] * dy[q]" over one
// phase plane: dst[p] = sum_t w[t] * dy[p - off[t]] (taps in ascending order,
// so the sums equal the scatter's). dy is read through a zero margin of at
// least `len` floats on both sides.
template <int T>
void gatherTaps(float* __restrict dst, int64_t len, const float* dy, const int64_t* off,
                const float* w) {
  const float* src[T];
  float wt[T];
  for (int t = 0; t < T; ++t) { src[t] = dy - off[t]; wt[t] = w[t]; }
  for (int64_t p = 0; p < len; ++p) {
    float acc = 0.f;
    for (int t = 0; t < T; ++t) acc += wt[t] * src[t][p];
    dst[p] = acc;
  }
}

void gatherTapsN(int n, float* dst, int64_t len, const float* dy, const int64_t* off,
                 const float* w) {
  switch (n) {
    case 0: std::fill(dst, dst + len, 0.f); return;
    case 1: return gatherTaps<1>(dst, len, dy, off, w);
    case 2: return gatherTaps<2>(dst, len, dy, off, w);
    case 3: return gatherTaps<3>(dst, len, dy, off, w);
    case 4: return gatherTaps<4>(dst, len, dy, off, w);
    case 5: return gatherTaps<5>(dst, len, dy, off, w);
    case 6: return gatherTaps<6>(dst, len, dy, off, w);
    case 7: return gatherTaps<7>(dst, len, dy, off, w);
    case 8: return gatherTaps<8>(dst, len, dy, off, w);
    case 9: return gatherTaps<9>(dst, len, dy, off, w);
    default: break;
  }
}

template <int T>
void fusedTapsDw(const float* planes, const TapTable& taps, const float* __restrict dy,
                 float* dw, int64_t Q) {
  const float* src[T];
  for (int t = 0; t < T; ++t) src[t] = planes + taps[t];
  V8 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V8{};
  int64_t q = 0;
  for (; q + 8 <= Q; q += 8) {
    const V8 d = loadV8(dy + q);
    for (int t = 0; t < T; ++t) acc[t] += d * loadV8(src[t] + q);
  }
  for (int t = 0; t < T; ++t) {
    const V8& a = acc[t];
    float s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    for (int64_t r = q; r < Q; ++r) s += dy[r] * src[t][r];
    dw[t] += s;
  }
}

}  // namespace

void depthwiseForward(const float* x, const float* w, const float* bias, int64_t c,
                      int64_t mult, const Axis& ah, const Axis& aw, float* y,
                      std::vector<float>& scratch) {
  const Phases p = phasesOf(ah, aw);
  const int64_t H = ah.in, W = aw.in, OH = ah.out, OW = aw.out, KH = ah.kernel,
                KW = aw.kernel, Q = OH * p.Wh;
  // scratch: planes (sh*sw*plane) | yw (OH, Wh)
  if (scratch.size() < static_cast<size_t>(p.total() + Q)) scratch.resize(p.total() + Q);
  float* planes = scratch.data();
  float* yw = planes + p.total();
  std::memset(planes, 0, sizeof(float) * p.total());  // borders stay zero
  const TapTable taps(p, ah, aw);
  for (int64_t ci = 0; ci < c; ++ci) {
    splitPhases(x + ci * H * W, ah, aw, p, planes);
    for (int64_t m = ci * mult; m < (ci + 1) * mult; ++m) {
      const float* wm = w + m * KH * KW;
      if (KH * KW == 9) {
        fusedTapsForward<9>(planes, taps, wm, bias ? bias[m] : 0.f, yw, Q);
      } else {
        std::fill(yw, yw + Q, bias ? bias[m] : 0.f);
        for (int64_t t = 0; t < KH * KW; ++t) axpy(wm[t], planes + taps[t], yw, Q);
      }
      float* ym = y + m * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh)
        std::memcpy(ym + oh * OW, yw + oh * p.Wh, sizeof(float) * OW);
    }
  }
}

void depthwiseBackward(const float* x, const float* w, const float* dy, int64_t c,
                       int64_t mult, const Axis& ah, const Axis& aw, float* dx,
                       float* dw, std::vector<float>& scratch) {
  const Phases p = phasesOf(ah, aw);
  const int64_t H = ah.in, W = aw.in, OH = ah.out, OW = aw.out, KH = ah.kernel,
                KW = aw.kernel, Q = OH * p.Wh;
  // scratch: planes | dplanes | margin | dyw (OH, Wh) with zero scratch columns | margin
  const int64_t margin = p.plane;
  const size_t need = static_cast<size_t>(2 * p.total() + Q + 2 * margin);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* dplanes = planes + p.total();
  float* dyw = dplanes + p.total() + margin;
  std::memset(dyw - margin, 0, sizeof(float) * (Q + 2 * margin));
  const TapTable taps(p, ah, aw);
  // Taps grouped by phase plane (ascending), offsets relative to their plane:
  // the dx gather form applies when every plane has at most 9 taps.
  const int64_t nphase = p.sh * p.sw;
  bool gather = dx && KH * KW <= 64 && nphase <= 64;
  int64_t ph_count[64] = {}, ph_off[64][9], ph_tap[64][9];
  for (int64_t t = 0; gather && t < KH * KW; ++t) {
    const int64_t k = taps[t] / p.plane;
    if (ph_count[k] >= 9) { gather = false; break; }
    ph_off[k][ph_count[k]] = taps[t] - k * p.plane;
    ph_tap[k][ph_count[k]++] = t;
  }
  std::memset(planes, 0, sizeof(float) * p.total());  // borders stay zero
  for (int64_t ci = 0; ci < c; ++ci) {
    if (dw) splitPhases(x + ci * H * W, ah, aw, p, planes);
    const bool gather_now = gather && mult == 1;
    if (dx && !gather_now) std::memset(dplanes, 0, sizeof(float) * p.total());
    for (int64_t m = ci * mult; m < (ci + 1) * mult; ++m) {
      const float* dym = dy + m * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh)
        std::memcpy(dyw + oh * p.Wh, dym + oh * OW, sizeof(float) * OW);
      if (dw && KH * KW == 9) fusedTapsDw<9>(planes, taps, dyw, dw + m * KH * KW, Q);
      if (gather_now) {
        for (int64_t k = 0; k < nphase; ++k) {
          float wk[9];
          for (int64_t j = 0; j < ph_count[k]; ++j) wk[j] = w[m * KH * KW + ph_tap[k][j]];
          gatherTapsN(static_cast<int>(ph_count[k]), dplanes + k * p.plane, p.plane, dyw,
                      ph_off[k], wk);
        }
      }
      for (int64_t t = 0; t < KH * KW; ++t) {
        if (dw && KH * KW != 9) dw[m * KH * KW + t] += dot(dyw, planes + taps[t], Q);
        if (dx && !gather_now) axpy(w[m * KH * KW + t], dyw, dplanes + taps[t], Q);
      }
    }
    if (dx) mergePhases(dplanes, ah, aw, p, dx + ci * H * W);
  }
}

}  // namespace slim::ops::detail
