// The transforms as geometry: once the header gives the image size, a plan
// says which source rectangle becomes the resize input (the crop for
// training, the whole image for evaluation), the resize's box and output
// size, which window of that output is kept, and where it lands in the
// img_size x img_size result. The decoder then decodes only what the window
// reads. Formulas follow PaddleSlim's imagenet_reader.py (ACT) and
// torchvision 0.14 transforms (act-reference §10); Python's round() is
// round-half-even, reproduced with std::nearbyint.
#include "trainer/data/image_transform.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "trainer/core/rng.h"
#include "trainer/data/image_decode.h"
#include "trainer/data/source.h"

namespace slim::data {
namespace {

struct Plan {
  DecodePlan decode;
  int denom = 1;
  int64_t in_x = 0, in_y = 0, in_w = 0, in_h = 0;  // resize input, scaled-image pixels
  ResizeBox box;                                    // relative to the input
  int64_t out_w = 0, out_h = 0;
  PixelRect win;               // kept part of the resize output
  int64_t dst_x = 0, dst_y = 0;  // where it lands in the output
  bool flip = false;
};

double uniform(Rng& rng, double a, double b) {
  return a + (b - a) * (static_cast<double>(rng.next() >> 11) * 0x1.0p-53);
}
// numpy/torch randint(0, n) inclusive of n.
int64_t randint(Rng& rng, int64_t n) {
  return static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::max<int64_t>(n, 0)) + 1));
}
int64_t pyRound(double v) { return static_cast<int64_t>(std::nearbyint(v)); }
int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// PaddleSlim random_crop: a crop of area scale * W * H and aspect^2 in ratio.
PixelRect actCrop(const ImageTransform& t, int64_t W, int64_t H, Rng& rng) {
  const double aspect = std::sqrt(uniform(rng, t.ratio_min, t.ratio_max));
  const double w = aspect, h = 1.0 / aspect;
  const double bound =
      std::min((double(W) / double(H)) / (w * w), (double(H) / double(W)) / (h * h));
  const double smax = std::min(t.scale_max, bound), smin = std::min(t.scale_min, bound);
  const double side = std::sqrt(double(W) * double(H) * uniform(rng, smin, smax));
  const int64_t cw = std::clamp<int64_t>(static_cast<int64_t>(side * w), 1, W);
  const int64_t ch = std::clamp<int64_t>(static_cast<int64_t>(side * h), 1, H);
  const int64_t x = randint(rng, W - cw);
  const int64_t y = randint(rng, H - ch);
  return {x, y, cw, ch};
}

// torchvision RandomResizedCrop.get_params: 10 tries, then a center crop.
PixelRect torchvisionCrop(const ImageTransform& t, int64_t W, int64_t H, Rng& rng) {
  const double area = double(W) * double(H);
  const double lr0 = std::log(t.ratio_min), lr1 = std::log(t.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(rng, t.scale_min, t.scale_max);
    const double aspect = std::exp(uniform(rng, lr0, lr1));
    const int64_t w = pyRound(std::sqrt(target * aspect));
    const int64_t h = pyRound(std::sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const int64_t y = randint(rng, H - h);
      const int64_t x = randint(rng, W - w);
      return {x, y, w, h};
    }
  }
  const double in_ratio = double(W) / double(H);
  int64_t w = W, h = H;
  if (in_ratio < t.ratio_min) {
    h = pyRound(double(W) / t.ratio_min);
  } else if (in_ratio > t.ratio_max) {
    w = pyRound(double(H) * t.ratio_max);
  }
  w = std::clamp<int64_t>(w, 1, W);
  h = std::clamp<int64_t>(h, 1, H);
  return {(W - w) / 2, (H - h) / 2, w, h};
}

// Largest DCT scale 1/d (d in 8, 4, 2) keeping the region >= the output.
int chooseDenom(const ImageTransform& t, bool jpeg, int64_t rw, int64_t rh, int64_t ow,
                int64_t oh) {
  if (!jpeg || !t.dct_scaling) return 1;
  for (int d : {8, 4, 2})
    if (rw >= ow * d && rh >= oh * d) return d;
  return 1;
}

// Output size of the evaluation resize (short side -> resize_size).
void evalSize(const ImageTransform& t, int64_t W, int64_t H, int64_t* rw, int64_t* rh) {
  const int64_t R = t.resize_size;
  if (t.kind == TransformKind::kAct) {
    const double percent = double(R) / double(std::min(W, H));
    *rw = pyRound(double(W) * percent);
    *rh = pyRound(double(H) * percent);
  } else if (W <= H) {
    *rw = R;
    *rh = static_cast<int64_t>(double(R) * double(H) / double(W));
  } else {
    *rh = R;
    *rw = static_cast<int64_t>(double(R) * double(W) / double(H));
  }
  *rw = std::max<int64_t>(*rw, 1);
  *rh = std::max<int64_t>(*rh, 1);
}

// Center-crop offset (may be negative: the result is padded with zeros).
int64_t centerOffset(TransformKind kind, int64_t size, int64_t crop) {
  if (kind == TransformKind::kAct) return floorDiv(size - crop, 2);
  if (size >= crop) return pyRound(double(size - crop) / 2.0);
  return -((crop - size) / 2);
}

Plan makePlan(const ImageTransform& t, uint64_t seed, int64_t W, int64_t H, bool jpeg) {
  Plan p;
  const int64_t S = t.img_size;
  if (seed != kNoAugment) {
    Rng rng(seed);
    const PixelRect c = t.kind == TransformKind::kAct ? actCrop(t, W, H, rng)
                                                      : torchvisionCrop(t, W, H, rng);
    p.flip = t.flip && uniform(rng, 0.0, 1.0) < 0.5;
    p.out_w = p.out_h = S;
    p.win = {0, 0, S, S};
    p.denom = chooseDenom(t, jpeg, c.w, c.h, S, S);
    if (p.denom == 1) {
      p.in_x = c.x, p.in_y = c.y, p.in_w = c.w, p.in_h = c.h;
      p.box = {0.f, 0.f, float(c.w), float(c.h)};
    } else {
      // The crop in scaled pixels: the covering integer rectangle is the
      // input, the exact (fractional) crop its box.
      const double d = p.denom;
      const int64_t sw = jpegScaledSize(W, p.denom), sh = jpegScaledSize(H, p.denom);
      p.in_x = c.x / p.denom, p.in_y = c.y / p.denom;
      p.in_w = std::min<int64_t>(sw, (c.x + c.w + p.denom - 1) / p.denom) - p.in_x;
      p.in_h = std::min<int64_t>(sh, (c.y + c.h + p.denom - 1) / p.denom) - p.in_y;
      p.box = {float(c.x / d - p.in_x), float(c.y / d - p.in_y),
               float(std::min<double>((c.x + c.w) / d - p.in_x, p.in_w)),
               float(std::min<double>((c.y + c.h) / d - p.in_y, p.in_h))};
    }
  } else {
    evalSize(t, W, H, &p.out_w, &p.out_h);
    const int64_t ox = centerOffset(t.kind, p.out_w, S), oy = centerOffset(t.kind, p.out_h, S);
    p.win.x = std::max<int64_t>(ox, 0);
    p.win.y = std::max<int64_t>(oy, 0);
    p.win.w = std::min(ox + S, p.out_w) - p.win.x;
    p.win.h = std::min(oy + S, p.out_h) - p.win.y;
    p.dst_x = p.win.x - ox;
    p.dst_y = p.win.y - oy;
    p.denom = chooseDenom(t, jpeg, W, H, p.out_w, p.out_h);
    p.in_w = jpegScaledSize(W, p.denom);
    p.in_h = jpegScaledSize(H, p.denom);
    p.box = {0.f, 0.f, float(double(W) / p.denom), float(double(H) / p.denom)};
  }
  const PixelRect need = resizeSourceRect(p.in_w, p.in_h, p.box, p.out_w, p.out_h, t.interp, p.win);
  p.decode.scale_denom = p.denom;
  p.decode.x0 = p.in_x + need.x;
  p.decode.y0 = p.in_y + need.y;
  p.decode.x1 = p.decode.x0 + need.w;
  p.decode.y1 = p.decode.y0 + need.h;
  return p;
}

}  // namespace

Interp parseInterp(const std::string& s) {
  for (Interp i : {Interp::kNearest, Interp::kBilinear, Interp::kBicubic, Interp::kLanczos})
    if (s == interpName(i)) return i;
  SLIM_THROW(ConfigError, "unknown interpolation '", s,
             "' (expected nearest, bilinear, bicubic or lanczos)");
}

const char* interpName(Interp i) {
  switch (i) {
    case Interp::kNearest: return "nearest";
    case Interp::kBilinear: return "bilinear";
    case Interp::kBicubic: return "bicubic";
    case Interp::kLanczos: return "lanczos";
  }
  return "?";
}

void transformImageBytes(const uint8_t* bytes, size_t n, const std::string& path,
                         const ImageTransform& t, uint64_t seed, uint8_t* dst) {
  SLIM_ENFORCE(t.img_size > 0 && t.resize_size > 0, "image sizes must be positive (img_size ",
               t.img_size, ", resize_size ", t.resize_size, ")");
  thread_local std::vector<uint8_t> pixels;
  Plan p;
  const RgbRegion r = decodeImageRegion(
      bytes, n, path, t.max_pixels,
      [&](int64_t W, int64_t H, bool jpeg) {
        p = makePlan(t, seed, W, H, jpeg);
        return p.decode;
      },
      pixels);
  const int64_t S = t.img_size;
  if (p.win.w < S || p.win.h < S) std::memset(dst, 0, static_cast<size_t>(3 * S * S));
  RgbSource src;
  src.data = r.data;
  src.stride = r.stride;
  src.x0 = r.x0 - p.in_x;
  src.y0 = r.y0 - p.in_y;
  src.width = p.in_w;
  src.height = p.in_h;
  ChwTarget out;
  const int64_t col = p.flip ? S - (p.dst_x + p.win.w) : p.dst_x;
  out.data = dst + p.dst_y * S + col;
  out.row = S;
  out.plane = S * S;
  out.flip = p.flip;
  out.bgr = t.bgr;
  resizeRgbToChw(src, p.box, p.out_w, p.out_h, t.interp, p.win, out);
}

void transformMask(const uint16_t* mask, int64_t W, int64_t H, const ImageTransform& t,
                   uint64_t seed, int64_t fill, int64_t* dst) {
  // The image's plan without DCT scaling (random draws do not depend on it).
  ImageTransform nt = t;
  nt.interp = Interp::kNearest;
  nt.dct_scaling = false;
  const Plan p = makePlan(nt, seed, W, H, false);
  const int64_t S = t.img_size;
  std::fill(dst, dst + S * S, fill);
  // Pillow's NEAREST resize: source = int(box0 + (o + 0.5) * scale), in double.
  const double sx = (double(p.box.x1) - p.box.x0) / double(p.out_w);
  const double sy = (double(p.box.y1) - p.box.y0) / double(p.out_h);
  for (int64_t y = 0; y < p.win.h; ++y) {
    const int64_t oy = p.win.y + y;
    const int64_t yin = std::clamp<int64_t>(
        p.in_y + static_cast<int64_t>(p.box.y0 + (double(oy) + 0.5) * sy), 0, H - 1);
    int64_t* row = dst + (p.dst_y + y) * S;
    for (int64_t x = 0; x < p.win.w; ++x) {
      const int64_t ox = p.win.x + x;
      const int64_t xin = std::clamp<int64_t>(
          p.in_x + static_cast<int64_t>(p.box.x0 + (double(ox) + 0.5) * sx), 0, W - 1);
      const int64_t col = p.dst_x + x;
      row[p.flip ? S - 1 - col : col] = mask[yin * W + xin];
    }
  }
}

void loadImageSample(const std::string& path, const ImageTransform& t, uint64_t seed,
                     uint8_t* dst) {
  thread_local std::vector<uint8_t> bytes;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw BadSampleError(path + ": cannot open image file (" + std::strerror(errno) + ")");
  bytes.clear();
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw BadSampleError(path + ": error reading image file");
  transformImageBytes(bytes.data(), bytes.size(), path, t, seed, dst);
}

}  // namespace slim::data
