// Pillow's resampling (libImaging/Resample.c and Geometry.c's affine scale
// for NEAREST), reimplemented from its documented behaviour: coefficients
// per output pixel in double precision, normalised by their sum, then
// rounded to PRECISION_BITS = 22 fixed point; each pass accumulates in int32
// from a rounding bias of 1 << 21 and clips (sum >> 22) to 0..255. Integer
// sums are exact, so any evaluation order (the AVX2 kernels) gives Pillow's
// bytes. Coefficient math must not be contracted into FMAs (Pillow's
// Debian build has none), hence fp-contract=off below.
#pragma GCC optimize("fp-contract=off")
#include "trainer/data/image_resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SLIM_RESIZE_AVX2 1
#else
#define SLIM_RESIZE_AVX2 0
#endif

namespace slim::data {
namespace {

constexpr int kPrecisionBits = 22;
constexpr int32_t kBias = 1 << (kPrecisionBits - 1);

// Fixed-point coefficients of a run of outputs along one axis: output i
// reads source [bounds[2i], bounds[2i] + bounds[2i+1]) with k[i*ksize + t].
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;
  std::vector<int32_t> k;
};

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// ---- kernels: one output row of a pass. `row` points at source x = xoff.
// The vector versions read 4 bytes per RGB pixel and write 4 bytes per
// output pixel; callers keep 16 spare bytes after each buffer.

void horizontalRowScalar(const uint8_t* row, int64_t xoff, const Coeffs& c, int64_t n,
                         uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* k = &c.k[static_cast<size_t>(i * c.ksize)];
    const uint8_t* p = row + (c.bounds[2 * i] - xoff) * 3;
    int32_t s0 = kBias, s1 = kBias, s2 = kBias;
    for (int t = 0; t < c.bounds[2 * i + 1]; ++t) {
      s0 += p[3 * t] * k[t];
      s1 += p[3 * t + 1] * k[t];
      s2 += p[3 * t + 2] * k[t];
    }
    out[3 * i] = clip8(s0);
    out[3 * i + 1] = clip8(s1);
    out[3 * i + 2] = clip8(s2);
  }
}

// `rows`: the first source row of the output row's taps, `stride` apart.
void verticalRowScalar(const uint8_t* rows, int64_t stride, const int32_t* k, int taps,
                       int64_t n, uint8_t* out) {
  for (int64_t j = 0; j < n; ++j) {
    int32_t s = kBias;
    for (int t = 0; t < taps; ++t) s += rows[t * stride + j] * k[t];
    out[j] = clip8(s);
  }
}

#if SLIM_RESIZE_AVX2
__attribute__((target("avx2"))) inline __m128i packPixel(__m128i acc) {
  acc = _mm_srai_epi32(acc, kPrecisionBits);
  acc = _mm_packs_epi32(acc, acc);
  return _mm_packus_epi16(acc, acc);
}

__attribute__((target("avx2"))) void horizontalRowAvx2(const uint8_t* row, int64_t xoff,
                                                       const Coeffs& c, int64_t n,
                                                       uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* k = &c.k[static_cast<size_t>(i * c.ksize)];
    const uint8_t* p = row + (c.bounds[2 * i] - xoff) * 3;
    __m128i acc = _mm_set1_epi32(kBias);
    for (int t = 0; t < c.bounds[2 * i + 1]; ++t) {
      int32_t px;
      std::memcpy(&px, p + 3 * t, 4);
      const __m128i v = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(px));
      acc = _mm_add_epi32(acc, _mm_mullo_epi32(v, _mm_set1_epi32(k[t])));
    }
    const int32_t r = _mm_cvtsi128_si32(packPixel(acc));
    std::memcpy(out + 3 * i, &r, 4);
  }
}

__attribute__((target("avx2"))) void verticalRowAvx2(const uint8_t* rows, int64_t stride,
                                                     const int32_t* k, int taps, int64_t n,
                                                     uint8_t* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256i acc = _mm256_set1_epi32(kBias);
    for (int t = 0; t < taps; ++t) {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(rows + t * stride + j));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b),
                                                     _mm256_set1_epi32(k[t])));
    }
    acc = _mm256_srai_epi32(acc, kPrecisionBits);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(acc),
                                        _mm256_extracti128_si256(acc, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + j), _mm_packus_epi16(w16, w16));
  }
  if (j < n) verticalRowScalar(rows + j, stride, k, taps, n - j, out + j);
}

const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#else
constexpr bool kHaveAvx2 = false;
void horizontalRowAvx2(const uint8_t*, int64_t, const Coeffs&, int64_t, uint8_t*) {}
void verticalRowAvx2(const uint8_t*, int64_t, const int32_t*, int, int64_t, uint8_t*) {}
#endif

void horizontalRow(const uint8_t* row, int64_t xoff, const Coeffs& c, int64_t n, uint8_t* out) {
  if (kHaveAvx2) return horizontalRowAvx2(row, xoff, c, n, out);
  horizontalRowScalar(row, xoff, c, n, out);
}

void verticalRow(const uint8_t* rows, int64_t stride, const int32_t* k, int taps, int64_t n,
                 uint8_t* out) {
  if (kHaveAvx2) return verticalRowAvx2(rows, stride, k, taps, n, out);
  verticalRowScalar(rows, stride, k, taps, n, out);
}

double filterSupport(Interp f) {
  switch (f) {
    case Interp::kBilinear: return 1.0;
    case Interp::kBicubic: return 2.0;
    case Interp::kLanczos: return 3.0;
    default: return 0.5;
  }
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double filterAt(Interp f, double x) {
  switch (f) {
    case Interp::kBilinear:
      if (x < 0.0) x = -x;
      return x < 1.0 ? 1.0 - x : 0.0;
    case Interp::kBicubic: {
      const double a = -0.5;
      if (x < 0.0) x = -x;
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    }
    case Interp::kLanczos:
      return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
    default:
      return 0.0;
  }
}

// Geometry of one axis: output pixel xx reads source [xmin, xmin + n).
struct Axis {
  double scale, support, center0;
  int64_t in_size;
  float in0;

  Axis(int64_t in, float b0, float b1, int64_t out, Interp f) : in_size(in), in0(b0) {
    scale = static_cast<double>(b1 - b0) / static_cast<double>(out);
    support = filterSupport(f) * std::max(scale, 1.0);
  }
  double center(int64_t xx) const { return in0 + (static_cast<double>(xx) + 0.5) * scale; }
  void bounds(int64_t xx, int* xmin, int* n) const {
    const double c = center(xx);
    int lo = static_cast<int>(c - support + 0.5);
    int hi = static_cast<int>(c + support + 0.5);
    lo = std::max(lo, 0);
    hi = std::min<int64_t>(hi, in_size);
    *xmin = lo;
    *n = std::max(hi - lo, 0);
  }
};

// Fixed-point coefficients for outputs [first, first + count) of one axis.
void computeCoeffs(const Axis& ax, Interp f, int64_t first, int64_t count, Coeffs* c) {
  const double filterscale = std::max(ax.scale, 1.0);
  c->ksize = static_cast<int>(std::ceil(ax.support)) * 2 + 1;
  c->bounds.resize(static_cast<size_t>(count) * 2);
  c->k.assign(static_cast<size_t>(count * c->ksize), 0);
  std::vector<double> w(static_cast<size_t>(c->ksize));
  for (int64_t i = 0; i < count; ++i) {
    const double center = ax.center(first + i);
    int xmin, n;
    ax.bounds(first + i, &xmin, &n);
    double ww = 0.0;
    for (int x = 0; x < n; ++x) {
      w[x] = filterAt(f, (x + xmin - center + 0.5) * (1.0 / filterscale));
      ww += w[x];
    }
    int32_t* k = &c->k[static_cast<size_t>(i * c->ksize)];
    for (int x = 0; x < n; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      const double s = v * (1 << kPrecisionBits);
      k[x] = static_cast<int32_t>(v < 0 ? -0.5 + s : 0.5 + s);
    }
    c->bounds[2 * i] = xmin;
    c->bounds[2 * i + 1] = n;
  }
}

// Pillow's NEAREST: source index of each output along one axis, from the
// accumulated position a[2] + a[0] * (0.5 + i), -1 when outside.
void nearestTable(int64_t in, float b0, float b1, int64_t out, int64_t first, int64_t count,
                  std::vector<int>* tab) {
  const double a = static_cast<double>(b1 - b0) / static_cast<double>(out);
  double pos = b0 + a * 0.5;
  tab->resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < first + count; ++i, pos += a) {
    if (i < first) continue;
    const int v = pos < 0.0 ? -1 : static_cast<int>(pos);
    (*tab)[i - first] = (v >= 0 && v < in) ? v : -1;
  }
}

struct Scratch {
  Coeffs h, v;
  std::vector<int> xtab, ytab;
  std::vector<uint8_t> tmp, line;
};

void writeRow(const uint8_t* rgb, int64_t w, int64_t y, const ChwTarget& dst) {
  uint8_t* p[3];
  for (int c = 0; c < 3; ++c) p[c] = dst.data + (dst.bgr ? 2 - c : c) * dst.plane + y * dst.row;
  if (dst.flip) {
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) p[c][w - 1 - x] = rgb[3 * x + c];
  } else {
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) p[c][x] = rgb[3 * x + c];
  }
}

void resizeNearest(const RgbSource& src, const ResizeBox& box, int64_t out_w, int64_t out_h,
                   const PixelRect& win, const ChwTarget& dst, Scratch& s) {
  nearestTable(src.width, box.x0, box.x1, out_w, win.x, win.w, &s.xtab);
  nearestTable(src.height, box.y0, box.y1, out_h, win.y, win.h, &s.ytab);
  s.tmp.assign(static_cast<size_t>(win.w * 3), 0);
  for (int64_t y = 0; y < win.h; ++y) {
    std::fill(s.tmp.begin(), s.tmp.end(), 0);
    const int sy = s.ytab[y];
    if (sy >= 0) {
      const uint8_t* row = src.data + (sy - src.y0) * src.stride;
      for (int64_t x = 0; x < win.w; ++x)
        if (s.xtab[x] >= 0) std::memcpy(&s.tmp[3 * x], row + (s.xtab[x] - src.x0) * 3, 3);
    }
    writeRow(s.tmp.data(), win.w, y, dst);
  }
}

}  // namespace

PixelRect resizeSourceRect(int64_t width, int64_t height, const ResizeBox& box, int64_t out_w,
                           int64_t out_h, Interp interp, const PixelRect& win) {
  PixelRect r;
  if (interp == Interp::kNearest) {
    std::vector<int> tab;
    int64_t lo[2], hi[2];
    for (int axis = 0; axis < 2; ++axis) {
      if (axis == 0) nearestTable(width, box.x0, box.x1, out_w, win.x, win.w, &tab);
      else nearestTable(height, box.y0, box.y1, out_h, win.y, win.h, &tab);
      lo[axis] = axis == 0 ? width : height;
      hi[axis] = 0;
      for (int v : tab) {
        if (v < 0) continue;
        lo[axis] = std::min<int64_t>(lo[axis], v);
        hi[axis] = std::max<int64_t>(hi[axis], v + 1);
      }
      if (hi[axis] <= lo[axis]) lo[axis] = 0, hi[axis] = 1;
    }
    return {lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]};
  }
  const Axis ax(width, box.x0, box.x1, out_w, interp), ay(height, box.y0, box.y1, out_h, interp);
  int a, n, b, m;
  ax.bounds(win.x, &a, &n);
  ax.bounds(win.x + win.w - 1, &b, &m);
  r.x = a;
  r.w = std::max<int64_t>(b + m - a, 1);
  ay.bounds(win.y, &a, &n);
  ay.bounds(win.y + win.h - 1, &b, &m);
  r.y = a;
  r.h = std::max<int64_t>(b + m - a, 1);
  return r;
}

void resizeRgbToChw(const RgbSource& src, const ResizeBox& box, int64_t out_w, int64_t out_h,
                    Interp interp, const PixelRect& win, const ChwTarget& dst) {
  thread_local Scratch s;
  if (win.w <= 0 || win.h <= 0) return;
  if (interp == Interp::kNearest) return resizeNearest(src, box, out_w, out_h, win, dst, s);
  // Pillow skips a pass whose coefficients would be the identity.
  const bool need_h = out_w != src.width || box.x0 != 0 || box.x1 != out_w;
  const bool need_v = out_h != src.height || box.y0 != 0 || box.y1 != out_h;
  const Axis ax(src.width, box.x0, box.x1, out_w, interp);
  const Axis ay(src.height, box.y0, box.y1, out_h, interp);
  int64_t row0 = win.y, rows = win.h;  // source rows the vertical pass reads
  if (need_v) {
    computeCoeffs(ay, interp, win.y, win.h, &s.v);
    const int64_t last = 2 * (win.h - 1);
    row0 = s.v.bounds[0];
    rows = s.v.bounds[last] + s.v.bounds[last + 1] - row0;
  }
  // Horizontal pass: rows [row0, row0 + rows) to tmp, win.w pixels each.
  const int64_t tw = win.w * 3;
  s.tmp.resize(static_cast<size_t>(rows * tw) + 16);
  if (need_h) {
    computeCoeffs(ax, interp, win.x, win.w, &s.h);
    for (int64_t y = 0; y < rows; ++y) {
      const uint8_t* in = src.data + (row0 + y - src.y0) * src.stride;
      horizontalRow(in, src.x0, s.h, win.w, s.tmp.data() + y * tw);
    }
  } else {
    for (int64_t y = 0; y < rows; ++y)
      std::memcpy(s.tmp.data() + y * tw,
                  src.data + (row0 + y - src.y0) * src.stride + (win.x - src.x0) * 3, tw);
  }
  // Vertical pass, one output row at a time, then scatter to CHW planes.
  s.line.resize(static_cast<size_t>(tw) + 16);
  for (int64_t y = 0; y < win.h; ++y) {
    if (need_v) {
      const int ymin = s.v.bounds[2 * y] - static_cast<int>(row0);
      verticalRow(s.tmp.data() + ymin * tw, tw, &s.v.k[static_cast<size_t>(y * s.v.ksize)],
                  s.v.bounds[2 * y + 1], tw, s.line.data());
      writeRow(s.line.data(), win.w, y, dst);
    } else {
      writeRow(s.tmp.data() + y * tw, win.w, y, dst);
    }
  }
}

}  // namespace slim::data
