// Dataset validation and normalised batch assembly.
#include "trainer/data/dataset.h"

#include <algorithm>

namespace slim::data {
namespace {

// mean/std for channel c: the vectors have size 0 (identity), 1 or C.
float channelValue(const std::vector<float>& v, int64_t c, float dflt) {
  if (v.empty()) return dflt;
  return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)];
}

}  // namespace

Shape Dataset::sampleShape() const {
  SLIM_ENFORCE(images.defined() && images.ndim() == 4,
               "data set ", source, " has no (N, C, H, W) images");
  return {images.dim(1), images.dim(2), images.dim(3)};
}

int64_t Dataset::numClasses() const {
  if (size() == 0) return 0;
  const int64_t* y = labels.data<int64_t>();
  return *std::max_element(y, y + size()) + 1;
}

void validate(const Dataset& d) {
  if (!d.images.defined() || d.images.ndim() != 4)
    SLIM_THROW(DataError, d.source, ": images must have shape (N, C, H, W), got ",
               d.images.defined() ? shapeStr(d.images.shape()) : "nothing");
  if (d.images.dtype() != DType::kU8 && d.images.dtype() != DType::kF32)
    SLIM_THROW(DataError, d.source, ": images must be uint8 or float32, got ",
               dtypeName(d.images.dtype()));
  if (!d.labels.defined() || d.labels.ndim() != 1 ||
      d.labels.dtype() != DType::kI64)
    SLIM_THROW(DataError, d.source, ": labels must be a 1-D int64 tensor");
  if (d.labels.numel() != d.images.dim(0))
    SLIM_THROW(DataError, d.source, ": ", d.images.dim(0), " images but ",
               d.labels.numel(), " labels");
  const int64_t c = d.images.dim(1);
  for (const auto* v : {&d.mean, &d.std}) {
    const char* what = v == &d.mean ? "mean" : "std";
    if (!v->empty() && v->size() != 1 && static_cast<int64_t>(v->size()) != c)
      SLIM_THROW(DataError, d.source, ": ", what, " has ", v->size(),
                 " values but the images have ", c, " channels (give 1 or ", c,
                 ")");
  }
  for (float s : d.std)
    if (!(s > 0.0f)) SLIM_THROW(DataError, d.source, ": std values must be > 0, got ", s);
  const int64_t* y = d.labels.data<int64_t>();
  for (int64_t i = 0; i < d.labels.numel(); ++i)
    if (y[i] < 0)
      SLIM_THROW(DataError, d.source, ": negative label ", y[i], " at sample ", i);
}

void fillBatch(const Dataset& d, const std::vector<int64_t>& indices,
               Tensor& images, Tensor& labels) {
  const Shape s = d.sampleShape();  // {C, H, W}
  const int64_t C = s[0], HW = s[1] * s[2], CHW = C * HW;
  const int64_t B = static_cast<int64_t>(indices.size());
  const int64_t N = d.size();
  images.resize({B, s[0], s[1], s[2]}, DType::kF32);
  labels.resize({B}, DType::kI64);
  float* out = images.f32();                 // (B, C, H, W)
  int64_t* out_y = labels.data<int64_t>();   // (B)
  const int64_t* y = d.labels.data<int64_t>();

  // Per-channel affine map out = x * a[c] + b[c] would round differently from
  // (x * scale - mean) / std; keep the documented formula exactly (three
  // roundings: this file is built with -ffp-contract=off, CMakeLists.txt).
  std::vector<float> mean(C), stdv(C);
  for (int64_t c = 0; c < C; ++c) {
    mean[c] = channelValue(d.mean, c, 0.0f);
    stdv[c] = channelValue(d.std, c, 1.0f);
  }
  const float scale = d.pixel_scale;

  // uint8: a 256-entry table per channel gives the identical value per pixel.
  std::vector<float> lut;
  if (d.images.dtype() == DType::kU8) {
    lut.resize(static_cast<size_t>(C) * 256);
    for (int64_t c = 0; c < C; ++c)
      for (int v = 0; v < 256; ++v)
        lut[c * 256 + v] = (static_cast<float>(v) * scale - mean[c]) / stdv[c];
  }

  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = indices[b];
    if (i < 0 || i >= N)
      SLIM_THROW(DataError, d.source, ": sample index ", i, " out of range [0, ",
                 N, ") at batch position ", b);
    out_y[b] = y[i];
    float* dst = out + b * CHW;
    if (d.images.dtype() == DType::kU8) {
      const uint8_t* src = d.images.data<uint8_t>() + i * CHW;
      for (int64_t c = 0; c < C; ++c) {
        const float* t = lut.data() + c * 256;
        for (int64_t k = 0; k < HW; ++k) dst[c * HW + k] = t[src[c * HW + k]];
      }
    } else {
      const float* src = d.images.f32() + i * CHW;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < HW; ++k)
          dst[c * HW + k] = (src[c * HW + k] * scale - mean[c]) / stdv[c];
    }
  }
}

}  // namespace slim::data
