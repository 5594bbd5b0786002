// JPEG and PNG decoding to 8-bit RGB, exactly as Pillow 9.4's
// `Image.open(f).convert('RGB')` produces it (same libjpeg-turbo settings,
// Pillow's mode conversions), with JPEG DCT-domain downscaling and partial
// (cropped) decoding for the transforms. The format is chosen by magic bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slim::data {

enum class ImageFormat { kUnknown, kJpeg, kPng };

/// Identifies JPEG (FF D8 FF) and PNG (the 8-byte signature) by magic bytes.
/// @return kUnknown for anything else (GIF, garbage, fewer than 8 bytes)
ImageFormat sniffImageFormat(const uint8_t* bytes, size_t n);

/// A fully decoded image: (height, width, 3) RGB, rows packed.
struct RgbImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;
};

/// What to decode, chosen once the header (image size) is known.
struct DecodePlan {
  /// JPEG only: DCT scaling 1/scale_denom (1, 2, 4 or 8); the decoded image
  /// is then jpegScaledSize(W, d) x jpegScaledSize(H, d). Ignored for PNG.
  int scale_denom = 1;
  /// Region [x0, x1) x [y0, y1) of the (scaled) image that must be decoded;
  /// more may be decoded (JPEG crops snap to iMCU columns). x1 = -1: full.
  int64_t x0 = 0, y0 = 0, x1 = -1, y1 = -1;
};

/// Called with the image's full size (and whether it is a JPEG) after the
/// header is read and the max_pixels check has passed.
using DecodePlanner = std::function<DecodePlan(int64_t width, int64_t height, bool jpeg)>;

/// The decoded part of an image: `data` points at pixel (x0, y0) of the
/// (scaled) image of size full_width x full_height; RGB, `stride` bytes per
/// row; w x h pixels are valid. At least 16 readable bytes follow the last one.
struct RgbRegion {
  const uint8_t* data = nullptr;
  int64_t stride = 0;
  int64_t x0 = 0, y0 = 0, w = 0, h = 0;
  int64_t full_width = 0, full_height = 0;
  int scale_denom = 1;
};

/// Size of one side after libjpeg's DCT scaling by 1/denom (rounded up).
inline int64_t jpegScaledSize(int64_t size, int denom) { return (size + denom - 1) / denom; }

/// Decodes the planned region of an image held in memory.
/// @param bytes,n    the encoded file
/// @param path       used only in error messages
/// @param max_pixels decompression-bomb limit on width*height, checked from
///                   the header before any pixel is decoded
/// @param planner    picks the scale and region from the image size
/// @param scratch    pixel storage the returned region points into (reused)
/// @return the decoded region
/// Throws BadSampleError naming `path`: unsupported or corrupt data, a
/// truncated file, an image over max_pixels.
RgbRegion decodeImageRegion(const uint8_t* bytes, size_t n, const std::string& path,
                            int64_t max_pixels, const DecodePlanner& planner,
                            std::vector<uint8_t>& scratch);

/// Width and height from an image's header (JPEG or PNG), no pixels
/// decoded. Throws BadSampleError naming `path` for anything else.
void imageSize(const uint8_t* bytes, size_t n, const std::string& path, int64_t* width,
               int64_t* height);

/// A segmentation mask: one class id per pixel, rows packed.
struct MaskImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint16_t> values;
};

/// Decodes a PNG segmentation mask as PaddleSeg and torchvision read one
/// (`np.asarray(Image.open(f))`): palette images give their palette
/// indices, grayscale images (1 to 16 bits) their gray values. Other PNG
/// colour types and JPEG (lossy: class ids would not survive) are errors.
/// Throws BadSampleError naming `path`.
MaskImage decodeMaskPng(const uint8_t* bytes, size_t n, const std::string& path,
                        int64_t max_pixels);

/// Decodes a whole image at full size (no DCT scaling).
/// @return the image as Pillow's convert('RGB') yields it
/// Throws BadSampleError as decodeImageRegion does.
RgbImage decodeImage(const uint8_t* bytes, size_t n, const std::string& path,
                     int64_t max_pixels);

}  // namespace slim::data
