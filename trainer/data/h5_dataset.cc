// HDF5 (x, y) data sets as a streaming Source on top of slim::h5 (readRows):
// labels are read at open, pixel rows when a batch is drawn.
#include "trainer/data/h5_dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#if SLIM_DATA_HAVE_H5
#include "checkpoint/h5.h"
#endif

namespace slim::data {

#if !SLIM_DATA_HAVE_H5
// Built without the checkpoint layer's HDF5 reader (see CMakeLists.txt).
SourcePtr openHdf5(const std::string& path) {
  SLIM_THROW(DataError, path, ": HDF5 data sets are not available in this ",
             "build (checkpoint/h5.h was missing at configure time)");
}
#else

using ::slim::detail::str;

namespace {

constexpr const char* kLayout =
    "needs dataset 'x' (N,C,H,W) or (N,H,W) images, or (N,T) integer token ids, and "
    "optionally 'y' (N) or (N,H,W)";
// HDF5's chunk cache for `x`: a few chunks of the writer's ~1 MiB.
constexpr size_t kChunkCacheBytes = size_t{4} << 20;
// Sequential reads fetch this many bytes of rows at once per thread.
constexpr size_t kBlockBytes = size_t{1} << 20;

/// The rows one thread read last from one source: a block of rows kept for
/// sequential access, and the last row index to detect it. One per thread,
/// so memory is bounded by threads * kBlockBytes whatever N is.
struct RowBlock {
  uint64_t source = 0;  // serial of the owning source (0: none)
  int64_t first = 0;    // rows [first, first + count) are in `data`
  int64_t count = 0;
  int64_t last = -2;    // the row this thread read last from `source`
  std::vector<unsigned char> data;
};

RowBlock& threadBlock() {
  thread_local RowBlock block;
  return block;
}

// Serials are never reused, so a block can never be mistaken for the rows of
// a later source that happens to live at the same address.
std::atomic<uint64_t> next_serial{1};

h5::Handle openChecked(const h5::Handle& file, const std::string& path,
                       const char* name, size_t cache_bytes) {
  if (!h5::hasLink(file, name))
    SLIM_THROW(DataError, path, ": dataset '", name, "' is missing (", kLayout, ")");
  try {
    return h5::openDataset(file, name, cache_bytes);
  } catch (const Error& e) {
    SLIM_THROW(DataError, path, ": cannot read dataset '", name, "' (", kLayout,
               "): ", e.what());
  }
}

}  // namespace

Hdf5Source::Hdf5Source(const std::string& path)
    : path_(path), serial_(next_serial.fetch_add(1)) {
  try {
    file_ = std::make_unique<h5::Handle>(h5::openFileReadOnly(path));
  } catch (const Error& e) {
    SLIM_THROW(DataError, path, ": cannot open HDF5 data set (", kLayout, "): ", e.what());
  }
  x_ = std::make_unique<h5::Handle>(openChecked(*file_, path, "x", kChunkCacheBytes));

  // x: uint8 pixels stay uint8, floats of any width are read as float32,
  // other integers (int64, int32, ...) are token ids read as int64.
  const h5::StoredType xt = h5::storedType(*x_);
  stored_ = xt.name;
  const bool integer = xt.cls == h5::StoredType::Class::kInteger;
  const bool u8 = integer && !xt.is_signed && xt.bytes == 1;
  if (!integer && xt.cls != h5::StoredType::Class::kFloat)
    SLIM_THROW(DataError, path, ": dataset 'x' must be float or uint8 pixels, or integer token "
               "ids, got ", xt.name);
  pixel_ = u8 ? DType::kU8 : integer ? DType::kI64 : DType::kF32;
  Shape xs = h5::datasetInfo(*x_).shape;
  if (pixel_ == DType::kI64) {
    if (xs.size() != 2)
      SLIM_THROW(DataError, path, ": dataset 'x' holds ", xt.name, " token ids and must be "
                 "(N,T), got ", shapeStr(xs));
    n_ = xs[0];
    sample_ = {xs[1]};
  } else {
    if (xs.size() == 3) xs.insert(xs.begin() + 1, 1);  // (N,H,W) -> (N,1,H,W)
    if (xs.size() != 4)
      SLIM_THROW(DataError, path, ": dataset 'x' must be (N,C,H,W) or (N,H,W), got ",
                 shapeStr(h5::datasetInfo(*x_).shape));
    n_ = xs[0];
    sample_ = {xs[1], xs[2], xs[3]};
  }
  const size_t row = static_cast<size_t>(numelOf(sample_)) * dtypeSize(pixel_);
  block_rows_ = row == 0 ? 1 : std::max<int64_t>(1, static_cast<int64_t>(kBlockBytes / row));
  max_.where = path;
  if (!h5::hasLink(*file_, "y")) {  // unlabelled: evaluation scores the distillation loss
    return;
  }
  y_ = std::make_unique<h5::Handle>(openChecked(*file_, path, "y", 0));

  // y: any integer type; (N) or (N, 1) class labels read whole (8 bytes per
  // sample), or (N, H, W) masks read row by row.
  const h5::StoredType yt = h5::storedType(*y_);
  if (yt.cls != h5::StoredType::Class::kInteger)
    SLIM_THROW(DataError, path, ": dataset 'y' must hold integer labels, got ", yt.name);
  const Shape ys = h5::datasetInfo(*y_).shape;
  const bool masks = ys.size() == 3;
  if (!(ys.size() == 1 || (ys.size() == 2 && ys[1] == 1) || masks))
    SLIM_THROW(DataError, path, ": dataset 'y' must be (N), (N,1) or (N,H,W), got ",
               shapeStr(ys));
  if (ys[0] != n_)
    SLIM_THROW(DataError, path, ": 'x' holds ", n_, " samples but 'y' holds ", ys[0],
               " labels");
  if (masks) {
    if (pixel_ == DType::kI64)
      SLIM_THROW(DataError, path, ": masks 'y' ", shapeStr(ys), " need images, but 'x' holds ",
                 stored_, " token ids ", shapeStr(h5::datasetInfo(*x_).shape),
                 " (give one class label per sample: 'y' (N))");
    if (ys[1] != sample_[1] || ys[2] != sample_[2])
      SLIM_THROW(DataError, path, ": masks 'y' are ", ys[1], "x", ys[2], " but images 'x' are ",
                 sample_[1], "x", sample_[2], " (H x W must match)");
    label_shape_ = {ys[1], ys[2]};
    scanMasks();
  } else {
    labels_.resize(static_cast<size_t>(n_));
    try {
      h5::readDataset(*y_, h5::Elem::kI64, labels_.data(), labels_.size() * sizeof(int64_t));
    } catch (const Error& e) {
      SLIM_THROW(DataError, path, ": cannot read dataset 'y': ", e.what());
    }
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t v = labels_[static_cast<size_t>(i)];
      if (v < 0)
        SLIM_THROW(DataError, path, ": negative label ", v, " at sample ", i, " (y[", i, "])");
      if (v > max_.value) max_ = {v, str(path, ":y[", i, "]")};
    }
  }
}

Hdf5Source::~Hdf5Source() = default;

int64_t Hdf5Source::label(int64_t i) const {
  if (i < 0 || i >= n_)
    SLIM_THROW(DataError, path_, ": sample index ", i, " outside [0, ", n_, ")");
  return labels_.empty() ? 0 : labels_[static_cast<size_t>(i)];
}

// Masks: every value must be >= 0; the largest one other than the ignore
// index (kIgnoreLabel) is checked against the model's classes. Read in
// blocks of about kBlockBytes, so memory stays bounded.
void Hdf5Source::scanMasks() {
  const int64_t hw = numelOf(label_shape_);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(kBlockBytes / 8) / std::max<int64_t>(hw, 1));
  std::vector<int64_t> buf;
  for (int64_t first = 0; first < n_; first += rows) {
    const int64_t count = std::min(rows, n_ - first);
    buf.resize(static_cast<size_t>(count * hw));
    try {
      h5::readRows(*y_, first, count, h5::Elem::kI64, buf.data(), buf.size() * sizeof(int64_t));
    } catch (const Error& e) {
      SLIM_THROW(DataError, path_, ": cannot read masks 'y' rows ", first, "..",
                 first + count - 1, ": ", e.what());
    }
    for (int64_t k = 0; k < count * hw; ++k) {
      const int64_t v = buf[static_cast<size_t>(k)];
      const int64_t i = first + k / hw, p = k % hw;
      if (v < 0)
        SLIM_THROW(DataError, path_, ": negative label ", v, " in mask y[", i, "] at (",
                   p / label_shape_[1], ", ", p % label_shape_[1], ")");
      if (v != kIgnoreLabel && v > max_.value)
        max_ = {v, str(path_, ":y[", i, "][", p / label_shape_[1], "][", p % label_shape_[1], "]")};
    }
  }
}

void Hdf5Source::readLabel(int64_t i, uint64_t /*seed*/, int64_t* dst) const {
  if (label_shape_.empty()) {
    dst[0] = label(i);
    return;
  }
  if (i < 0 || i >= n_)
    SLIM_THROW(DataError, path_, ": sample index ", i, " outside [0, ", n_, ")");
  try {
    h5::readRows(*y_, i, 1, h5::Elem::kI64, dst,
                 static_cast<size_t>(numelOf(label_shape_)) * sizeof(int64_t));
  } catch (const Error& e) {
    SLIM_THROW(BadSampleError, str(path_, ":y[", i, "]"), ": ", e.what());
  }
}

void Hdf5Source::read(int64_t i, uint64_t /*seed*/, void* dst) const {
  readRow(i, dst);
  if (pixel_ != DType::kF32) return;
  // A non-finite pixel would make the loss NaN and stop the run as a
  // divergence far from its cause: name the row instead.
  const float* p = static_cast<const float*>(dst);
  const int64_t count = numelOf(sample_);
  for (int64_t k = 0; k < count; ++k)
    if (!std::isfinite(p[k])) {
      int64_t bad = 0;
      for (int64_t j = k; j < count; ++j) bad += std::isfinite(p[j]) ? 0 : 1;
      SLIM_THROW(BadSampleError, where(i), ": non-finite pixel value ", p[k], " at element ", k,
                 " (", bad, " of the row's ", count, " values are NaN or infinite)");
    }
}

void Hdf5Source::readRow(int64_t i, void* dst) const {
  if (i < 0 || i >= n_)
    SLIM_THROW(DataError, path_, ": sample index ", i, " outside [0, ", n_, ")");
  const h5::Elem mem = h5::elemOf(pixel_);  // kU8, kF32 or kI64 (token ids)
  const size_t row = static_cast<size_t>(numelOf(sample_)) * dtypeSize(pixel_);
  RowBlock& b = threadBlock();
  if (b.source != serial_) {
    b.source = serial_;
    b.count = 0;
    b.last = -2;
  }
  const bool sequential = i == b.last + 1;
  b.last = i;
  if (i >= b.first && i < b.first + b.count) {
    std::memcpy(dst, b.data.data() + static_cast<size_t>(i - b.first) * row, row);
    return;
  }
  if (sequential && block_rows_ > 1) {
    const int64_t count = std::min(block_rows_, n_ - i);
    b.count = 0;  // invalid until the read succeeds
    b.data.resize(static_cast<size_t>(count) * row);
    try {
      h5::readRows(*x_, i, count, mem, b.data.data(), b.data.size());
      b.first = i;
      b.count = count;
      std::memcpy(dst, b.data.data(), row);
      return;
    } catch (const Error&) {
      // A bad row later in the block must not fail row i: read it alone.
    }
  }
  try {
    h5::readRows(*x_, i, 1, mem, dst, row);
  } catch (const Error& e) {
    SLIM_THROW(BadSampleError, where(i), ": ", e.what());
  }
}

std::string Hdf5Source::where(int64_t i) const { return str(path_, ":x[", i, "]"); }

std::string Hdf5Source::describe() const {
  const char* type = dtypeName(pixel_);
  const std::string from = stored_ == type ? "" : str(" from ", stored_);
  const char* labels = !y_ ? ", no labels" : label_shape_.empty() ? "" : ", masks";
  if (pixel_ == DType::kI64)
    return str("HDF5 ", path_, " (", n_, " samples, ", sample_[0], " ", type, " token ids", from,
               labels, ")");
  return str("HDF5 ", path_, " (", n_, " samples, ", sample_[0], "x", sample_[1], "x",
             sample_[2], " ", type, from, labels, ")");
}

SourcePtr openHdf5(const std::string& path) { return std::make_shared<Hdf5Source>(path); }

#endif  // SLIM_DATA_HAVE_H5

}  // namespace slim::data
