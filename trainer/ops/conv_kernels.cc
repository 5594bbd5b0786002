// Kernels behind Conv, Gemm/MatMul and the pools: the strided GEMM (its
// kernels: gemm_kernels.cc), window geometry, im2col/col2im. Depthwise
// convolution: depthwise.cc.
#include "trainer/ops/conv_kernels.h"

#include <algorithm>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <vector>

#include "trainer/core/error.h"

namespace slim::ops::detail {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          const float* cin, int64_t ldcin) {
  if (m == 0 || n == 0) return;
  if (!cin) {
    cin = c;
    ldcin = ldc;
  }
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == 0.f ? 0.f : beta * cin[i * ldcin + j];
    return;
  }
  // Per calling thread, grown only: op(A) packed, B^T when B is stored [n, k]
  // (packed in the kernels' column tiles, over the threads when large: a
  // Gemm's weight each forward).
  thread_local std::vector<float> ap, bt;
  ap.resize(static_cast<size_t>(packedASize(m, k)));
  packA(ta, m, k, a, lda, ap.data());
  if (tb) {
    bt.resize(static_cast<size_t>(k * n));
    packBTransposed(k, n, 0, k, b, ldb, bt.data());
    return gemmPackedB(m, n, k, alpha, ap.data(), bt.data(), beta, c, ldc, cin, ldcin);
  }
  gemmPacked(m, n, k, alpha, ap.data(), b, ldb, beta, c, ldc, cin, ldcin);
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

void copyStrided(float* dst, const float* src, int64_t n, int64_t stride) {
  if (stride == 1) {
    std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(std::max<int64_t>(n, 0)));
    return;
  }
  int64_t j = 0;
#if defined(__AVX512F__)
  if (stride == 2) {
    // Sixteen outputs from src[2j .. 2j + 31]: whole blocks while
    // 2j + 31 <= 2(n - 1), the rest below.
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; j + 17 <= n; j += 16) {
      const __m512 a = _mm512_loadu_ps(src + 2 * j), b = _mm512_loadu_ps(src + 2 * j + 16);
      _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(a, even, b));
    }
  }
#endif
  for (; j < n; ++j) dst[j] = src[j * stride];
}

namespace {

// The loop nest im2col and col2im share: for every channel ci and kernel tap
// (kh, kw), in the col buffer's block order, f(ci, kh, h_lo, h_hi, w_lo, w_hi,
// w_off) with the output rows [h_lo, h_hi) and columns [w_lo, w_hi) whose
// input lies inside the image (tapRange), and w_off the input column of
// output column 0 before striding.
template <class F>
void forEachTap(int64_t c, const Axis& ah, const Axis& aw, F&& f) {
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t kh = 0; kh < ah.kernel; ++kh) {
      int64_t h_lo, h_hi;
      tapRange(ah, kh, h_lo, h_hi);
      for (int64_t kw = 0; kw < aw.kernel; ++kw) {
        int64_t w_lo, w_hi;
        tapRange(aw, kw, w_lo, w_hi);
        f(ci, kh, h_lo, h_hi, w_lo, w_hi, kw * aw.dilation - aw.pad_begin);
      }
    }
}

}  // namespace

void im2colRows(const float* x, int64_t c, const Axis& ah, const Axis& aw, int64_t oh0, int64_t oh1,
                float* col) {
  const int64_t H = ah.in, W = aw.in, OW = aw.out, sW = aw.stride, L = (oh1 - oh0) * OW;
  auto tap = [&](int64_t ci, int64_t kh, int64_t h_lo, int64_t h_hi, int64_t w_lo, int64_t w_hi,
                 int64_t w_off) {
    const float* xc = x + ci * H * W;
    h_lo = std::clamp(h_lo, oh0, oh1);
    h_hi = std::clamp(h_hi, h_lo, oh1);
    std::memset(col, 0, sizeof(float) * (h_lo - oh0) * OW);
    for (int64_t oh = h_lo; oh < h_hi; ++oh) {
      float* dst = col + (oh - oh0) * OW;
      const float* src = xc + (oh * ah.stride - ah.pad_begin + kh * ah.dilation) * W + w_off;
      std::fill(dst, dst + w_lo, 0.f);
      copyStrided(dst + w_lo, src + w_lo * sW, w_hi - w_lo, sW);
      std::fill(dst + w_hi, dst + OW, 0.f);
    }
    std::memset(col + (h_hi - oh0) * OW, 0, sizeof(float) * (oh1 - h_hi) * OW);
    col += L;
  };
  forEachTap(c, ah, aw, tap);
}

void im2col(const float* x, int64_t c, const Axis& ah, const Axis& aw, float* col) {
  im2colRows(x, c, ah, aw, 0, ah.out, col);
}

void col2im(const float* col, int64_t c, const Axis& ah, const Axis& aw, float* dx) {
  const int64_t H = ah.in, W = aw.in, OH = ah.out, OW = aw.out, sW = aw.stride;
  auto tap = [&](int64_t ci, int64_t kh, int64_t h_lo, int64_t h_hi, int64_t w_lo, int64_t w_hi,
                 int64_t w_off) {
    float* dxc = dx + ci * H * W;
    for (int64_t oh = h_lo; oh < h_hi; ++oh) {
      const float* src = col + oh * OW;
      float* dst = dxc + (oh * ah.stride - ah.pad_begin + kh * ah.dilation) * W + w_off;
      if (sW == 1) {
        for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow] += src[ow];
      } else {
        for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow * sW] += src[ow];
      }
    }
    col += OH * OW;
  };
  forEachTap(c, ah, aw, tap);
}

}  // namespace slim::ops::detail
