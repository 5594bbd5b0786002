// Image samples for classification: decode (image_decode.h), then the
// training transform (random resized crop + flip, as PaddleSlim ACT's
// imagenet_reader or torchvision's RandomResizedCrop do it) or the
// evaluation transform (short-side resize + center crop), resampled as
// Pillow does (image_resize.h). Output: uint8 CHW, 3 x img_size x img_size.
// Only the pixels that survive the crop are decoded and resampled; JPEG may
// be decoded DCT-scaled when the region is >= 2x the size it is resized to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer/data/image_resize.h"

namespace slim::data {

/// Parses "nearest" | "bilinear" | "bicubic" | "lanczos".
/// @return the interpolation; throws ConfigError for anything else
Interp parseInterp(const std::string& s);

/// Name of an interpolation ("lanczos"), as parseInterp accepts it.
const char* interpName(Interp i);

/// Whose formulas the transforms follow (geometry and rounding differ).
enum class TransformKind { kAct, kTorchvision };

struct ImageTransform {
  TransformKind kind = TransformKind::kAct;
  int64_t img_size = 224;      ///< output is 3 x img_size x img_size
  int64_t resize_size = 256;   ///< eval: short side resized to this, then center crop
  Interp interp = Interp::kLanczos;  ///< ACT: lanczos; torchvision: bilinear
  double scale_min = 0.08, scale_max = 1.0;  ///< random-resized-crop area range
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  bool flip = true;            ///< random horizontal flip (p = 0.5) in training
  bool bgr = false;            ///< output channel order BGR instead of RGB
  int64_t max_pixels = 89478485;  ///< decompression-bomb limit on width*height
  bool dct_scaling = true;     ///< JPEG DCT downscaling when the region is >= 2x the output
};

/// Reads the image file `path` and transforms it (see transformImageBytes).
/// @param path the file; named in every error
/// @param t    the transform
/// @param seed kNoAugment: evaluation transform; else the training
///             transform, every random choice drawn from Rng(seed)
/// @param dst  3 * img_size * img_size uint8 values, CHW
/// Thread-safe. Throws BadSampleError naming `path`: missing file, truncated
/// or corrupt data, unsupported format, more than max_pixels pixels.
void loadImageSample(const std::string& path, const ImageTransform& t, uint64_t seed,
                     uint8_t* dst);

/// Same from bytes already in memory.
/// @param bytes,n the encoded image (JPEG or PNG, told by magic bytes)
/// @param path    only for messages
/// @param t,seed,dst as for loadImageSample
void transformImageBytes(const uint8_t* bytes, size_t n, const std::string& path,
                         const ImageTransform& t, uint64_t seed, uint8_t* dst);

/// The geometry `t` applies to an image of W x H with `seed` (the same crop
/// and flip as loadImageSample draws, or the evaluation resize + center
/// crop), applied to a mask of the same size with NEAREST resampling (as
/// Pillow's resize(NEAREST) samples): img_size x img_size class ids in
/// `dst`; pixels outside the image (a center crop larger than the resized
/// image) get `fill` (the ignore index).
/// @param mask W x H values, rows packed
void transformMask(const uint16_t* mask, int64_t W, int64_t H, const ImageTransform& t,
                   uint64_t seed, int64_t fill, int64_t* dst);

}  // namespace slim::data
