// TensorSource, validation and normalised batch assembly.
#include "trainer/data/dataset.h"

#include <algorithm>
#include <cstring>

#include "trainer/core/log.h"

namespace slim::data {
namespace {

// mean/std for channel c: the vectors have size 0 (identity), 1 or C.
float channelValue(const std::vector<float>& v, int64_t c, float dflt) {
  if (v.empty()) return dflt;
  return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)];
}

// After this many consecutive unreadable samples skip_bad_images gives up:
// a data set that bad is a configuration problem, not a few broken files.
constexpr int64_t kMaxConsecutiveBad = 1000;

// Reads sample `i` into `dst` and its labels into `labels` (null: none);
// with d.skip_bad an unreadable sample (image or mask) is replaced by the
// next readable one (same random key), counted and logged. Returns the
// index actually read.
int64_t readSample(const Dataset& d, int64_t i, uint64_t seed, void* dst, int64_t* labels) {
  const Source& s = *d.source;
  const int64_t n = s.size();
  for (int64_t k = 0;; ++k) {
    const int64_t j = (i + k) % n;
    try {
      s.read(j, seed, dst);
      if (labels != nullptr) s.readLabel(j, seed, labels);
      return j;
    } catch (const BadSampleError& e) {
      if (!d.skip_bad) throw;
      const int64_t count = ++d.stats->bad_samples;
      if (count <= 10)
        log::warn("skip_bad_images: skipping ", e.what(),
                  count == 10 ? " (further skips are only counted)" : "");
      if (k + 1 >= std::min(n, kMaxConsecutiveBad))
        SLIM_THROW(DataError, d.describe(), ": ", k + 1, " consecutive samples from ",
                   s.where(i), " on cannot be read (skip_bad_images is on); last error: ",
                   e.what());
    }
  }
}

}  // namespace

TensorSource::TensorSource(Tensor images, Tensor labels, std::string name)
    : images_(std::move(images)), labels_(std::move(labels)), name_(std::move(name)) {
  if (!images_.defined() || images_.ndim() != 4)
    SLIM_THROW(DataError, name_, ": images must have shape (N, C, H, W), got ",
               images_.defined() ? shapeStr(images_.shape()) : "nothing");
  if (images_.dtype() != DType::kU8 && images_.dtype() != DType::kF32)
    SLIM_THROW(DataError, name_, ": images must be uint8 or float32, got ",
               dtypeName(images_.dtype()));
  if (!labels_.defined() || (labels_.ndim() != 1 && labels_.ndim() != 3) ||
      labels_.dtype() != DType::kI64)
    SLIM_THROW(DataError, name_, ": labels must be an int64 tensor (N) or (N, H, W) masks");
  if (labels_.dim(0) != images_.dim(0))
    SLIM_THROW(DataError, name_, ": ", images_.dim(0), " images but ", labels_.dim(0),
               " labels");
  if (labels_.ndim() == 3 && (labels_.dim(1) != images_.dim(2) || labels_.dim(2) != images_.dim(3)))
    SLIM_THROW(DataError, name_, ": masks ", shapeStr(labels_.shape()), " do not match images ",
               shapeStr(images_.shape()));
  label_size_ = labels_.ndim() == 3 ? labels_.dim(1) * labels_.dim(2) : 1;
  const int64_t* y = labels_.data<int64_t>();
  for (int64_t i = 0; i < labels_.numel(); ++i)
    if (y[i] < 0)
      SLIM_THROW(DataError, name_, ": negative label ", y[i], " at sample ", i / label_size_);
}

Shape TensorSource::labelShape() const {
  return labels_.ndim() == 3 ? Shape{labels_.dim(1), labels_.dim(2)} : Shape{};
}

void TensorSource::readLabel(int64_t i, uint64_t, int64_t* dst) const {
  const int64_t* y = labels_.data<int64_t>() + i * label_size_;
  std::copy(y, y + label_size_, dst);
}

Shape TensorSource::sampleShape() const {
  return {images_.dim(1), images_.dim(2), images_.dim(3)};
}

LabelMax TensorSource::maxLabel() const {
  LabelMax m;
  const int64_t* y = labels_.data<int64_t>();
  for (int64_t i = 0; i < labels_.numel(); ++i)
    if (y[i] > m.value && (label_size_ == 1 || y[i] != kIgnoreLabel))
      m = {y[i], where(i / label_size_)};
  return m;
}

void TensorSource::read(int64_t i, uint64_t, void* dst) const {
  const size_t bytes = images_.bytes() / static_cast<size_t>(images_.dim(0));
  std::memcpy(dst, static_cast<const char*>(images_.raw()) + static_cast<size_t>(i) * bytes,
              bytes);
}

std::string TensorSource::where(int64_t i) const {
  return name_ + " sample " + std::to_string(i);
}

Dataset tensorDataset(Tensor images, Tensor labels, std::string name) {
  Dataset d;
  auto s = std::make_shared<TensorSource>(std::move(images), std::move(labels), std::move(name));
  d.pixel_scale = s->pixelType() == DType::kU8 ? 1.0f / 255.0f : 1.0f;
  d.source = std::move(s);
  return d;
}

Shape Dataset::sampleShape() const {
  SLIM_ENFORCE(source != nullptr, "data set has no source");
  return source->sampleShape();
}

void validate(const Dataset& d) {
  if (!d.source) return;
  if (d.tokens()) {
    if (!d.mean.empty() || !d.std.empty())
      SLIM_THROW(DataError, d.describe(), ": mean/std normalise images, but the data set holds "
                 "int64 token ids (remove Global.Data mean and std)");
    return;
  }
  const int64_t c = d.sampleShape()[0];
  for (const auto* v : {&d.mean, &d.std}) {
    const char* what = v == &d.mean ? "mean" : "std";
    if (!v->empty() && v->size() != 1 && static_cast<int64_t>(v->size()) != c)
      SLIM_THROW(DataError, d.describe(), ": ", what, " has ", v->size(),
                 " values but the images have ", c, " channels (give 1 or ", c, ")");
  }
  for (float s : d.std)
    if (!(s > 0.0f)) SLIM_THROW(DataError, d.describe(), ": std values must be > 0, got ", s);
}

void fillBatch(const Dataset& d, const std::vector<int64_t>& indices, int64_t epoch,
               Tensor& images, Tensor& labels) {
  const Shape s = d.sampleShape();  // {C, H, W}, or {T} for token ids
  const int64_t B = static_cast<int64_t>(indices.size());
  const int64_t N = d.size();
  const Source& src = *d.source;
  const bool tokens = d.tokens();
  const int64_t C = tokens ? 1 : s[0], HW = tokens ? s[0] : s[1] * s[2], CHW = C * HW;
  const bool u8 = src.pixelType() == DType::kU8;
  Shape bs = s;
  bs.insert(bs.begin(), B);
  images.resize(bs, tokens ? DType::kI64 : DType::kF32);
  // (B) class labels, or (B, H, W) masks (labelShape {H, W}).
  Shape ls = src.labelShape();
  const int64_t per_label = numelOf(ls);
  ls.insert(ls.begin(), B);
  labels.resize(ls, DType::kI64);
  int64_t* out_y = labels.data<int64_t>();
  const bool labelled = src.hasLabels();

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
  if (u8) {
    lut.resize(static_cast<size_t>(C) * 256);
    for (int64_t c = 0; c < C; ++c)
      for (int v = 0; v < 256; ++v)
        lut[c * 256 + v] = (static_cast<float>(v) * scale - mean[c]) / stdv[c];
  }

  // One sample's stored pixels (CHW), reused across calls of this thread.
  thread_local std::vector<unsigned char> scratch;
  scratch.resize(static_cast<size_t>(CHW) * dtypeSize(src.pixelType()));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = indices[b];
    if (i < 0 || i >= N)
      SLIM_THROW(DataError, d.describe(), ": sample index ", i, " out of range [0, ", N,
                 ") at batch position ", b);
    const uint64_t seed = d.augment ? sampleSeed(d.seed, epoch, i) : kNoAugment;
    int64_t* y = labelled ? out_y + b * per_label : nullptr;
    if (tokens) {  // token ids go to the model as stored
      readSample(d, i, seed, images.data<int64_t>() + b * CHW, y);
    } else {
      readSample(d, i, seed, scratch.data(), y);
    }
    if (!labelled) std::fill(out_y + b * per_label, out_y + (b + 1) * per_label, int64_t{0});
    if (tokens) continue;
    float* dst = images.f32() + b * CHW;
    if (u8) {
      const uint8_t* px = scratch.data();
      for (int64_t c = 0; c < C; ++c) {
        const float* t = lut.data() + c * 256;
        for (int64_t k = 0; k < HW; ++k) dst[c * HW + k] = t[px[c * HW + k]];
      }
    } else {
      const auto* px = reinterpret_cast<const float*>(scratch.data());
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < HW; ++k)
          dst[c * HW + k] = (px[c * HW + k] * scale - mean[c]) / stdv[c];
    }
  }
}

}  // namespace slim::data
