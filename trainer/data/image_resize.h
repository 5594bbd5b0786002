// Pillow-exact resampling of 8-bit RGB (Pillow 9.4 `Image.resize(size,
// resample, box)`): separable convolution, horizontal pass then vertical,
// support widened by the downscale factor, coefficients normalised to sum 1
// and rounded to 22-bit fixed point, each pass rounded and clipped to 8 bits.
// NEAREST follows Pillow's affine-scale path. Only a window of the output is
// computed (the part a center crop keeps) with the coefficients the full
// resize would use, so the window is bit-identical to cropping afterwards.
#pragma once

#include <cstdint>

namespace slim::data {

enum class Interp { kNearest, kBilinear, kBicubic, kLanczos };

/// Source pixels: `data` points at pixel (x0, y0) of an image of logical size
/// width x height, RGB, `stride` bytes per row; x0, y0 may be negative. Only
/// the pixels the resize reads (resizeSourceRect) need to exist, and at least
/// 16 readable bytes must follow the last of them (4-byte pixel loads).
struct RgbSource {
  const uint8_t* data = nullptr;
  int64_t stride = 0;
  int64_t x0 = 0, y0 = 0;
  int64_t width = 0, height = 0;
};

/// Pillow's `box`: the source rectangle mapped onto the output, in source
/// pixel units. Single precision, as Pillow parses it.
struct ResizeBox {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// A rectangle of integer pixels [x, x + w) x [y, y + h).
struct PixelRect {
  int64_t x = 0, y = 0, w = 0, h = 0;
};

/// Where the output window goes: CHW planes, `plane` bytes apart, rows `row`
/// bytes apart; `data` is channel 0's pixel for window pixel (0, 0).
/// flip writes each window row right to left; bgr swaps planes 0 and 2.
struct ChwTarget {
  uint8_t* data = nullptr;
  int64_t row = 0, plane = 0;
  bool flip = false, bgr = false;
};

/// The source pixels that output window `win` of resizing `box` of a
/// width x height image to out_w x out_h reads.
/// @return a rectangle within [0, width) x [0, height)
PixelRect resizeSourceRect(int64_t width, int64_t height, const ResizeBox& box,
                           int64_t out_w, int64_t out_h, Interp interp, const PixelRect& win);

/// Resizes `box` of `src` to out_w x out_h and writes output window `win`
/// (within [0, out_w) x [0, out_h)) to `dst`. Thread-safe.
void resizeRgbToChw(const RgbSource& src, const ResizeBox& box, int64_t out_w, int64_t out_h,
                    Interp interp, const PixelRect& win, const ChwTarget& dst);

}  // namespace slim::data
