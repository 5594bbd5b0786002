// Image data from an HDF5 file with the dataset `x` (N, C, H, W) or
// (N, H, W) of uint8 or float pixels and, optionally, `y`: (N) or (N, 1)
// integer class labels, or (N, H, W) integer masks (a class per pixel,
// segmentation; 255 = ignored). Without `y` the set is unlabelled. Class
// labels are read at open, masks and pixel rows on demand
// through h5/h5.h (slim::h5::readRows), so memory does not grow with
// N beyond the labels, and this layer makes no H5* calls of its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "trainer/data/source.h"

namespace slim::h5 {
class Handle;
}

namespace slim::data {

/// An HDF5 (x, y) file as a Source. The file stays open read-only for the
/// source's lifetime and rows are read when a batch is drawn. Memory beyond
/// the labels (8 bytes per sample) is bounded: HDF5's chunk cache (4 MiB for
/// `x`) and one block of about 1 MiB of rows per reading thread, kept for
/// sequential reads (i, i+1, ...). Random-order reads fetch one row each.
/// Pixels keep their stored type: uint8 as kU8 (0..255), float32/float64 as
/// kF32 (values as stored, e.g. already in [0, 1]). No augmentation: read()
/// ignores its seed. Thread-safe as Source requires (see h5/h5.h).
class Hdf5Source : public Source {
 public:
  /// Opens and validates the file and reads all labels.
  /// @param path the .h5 file
  /// @throws DataError naming the file for a missing file or dataset, bad
  ///         ranks or element types, x/y sample counts that differ, or a
  ///         negative label
  explicit Hdf5Source(const std::string& path);
  ~Hdf5Source() override;

  int64_t size() const override { return n_; }
  Shape sampleShape() const override { return sample_; }
  DType pixelType() const override { return pixel_; }
  int64_t label(int64_t i) const override;
  LabelMax maxLabel() const override { return max_; }
  Shape labelShape() const override { return label_shape_; }
  bool hasLabels() const override { return y_ != nullptr; }
  /// Class label, or row i of the (N, H, W) masks (`seed` is ignored).
  void readLabel(int64_t i, uint64_t seed, int64_t* dst) const override;
  /// Reads row i of `x`; `seed` is ignored. Throws BadSampleError naming
  /// where(i) when HDF5 cannot read it (e.g. a checksum mismatch) or when a
  /// float row holds a NaN or infinity.
  void read(int64_t i, uint64_t seed, void* dst) const override;
  std::string where(int64_t i) const override;
  std::string describe() const override;

 private:
  void readRow(int64_t i, void* dst) const;  // read() without the finiteness check
  void scanMasks();

  std::string path_;
  std::unique_ptr<h5::Handle> file_;  // open read-only while the source lives
  std::unique_ptr<h5::Handle> x_;     // dataset `x`
  int64_t n_ = 0;                     // samples N
  Shape sample_;                      // {C, H, W}
  DType pixel_ = DType::kU8;          // kU8 or kF32
  std::string stored_;                // x's stored type, e.g. "float64"
  std::unique_ptr<h5::Handle> y_;     // dataset `y`; null when unlabelled
  Shape label_shape_;                 // {} (class labels) or {H, W} (masks)
  std::vector<int64_t> labels_;       // y: (N) class labels (empty for masks)
  LabelMax max_;
  int64_t block_rows_ = 1;            // rows per sequential-read block
  uint64_t serial_ = 0;               // this source in per-thread caches
};

/// Opens an HDF5 (x, y) file as a streaming Source (see Hdf5Source).
/// @param path the .h5 file
/// @return the source, shared by loaders and decode workers
/// @throws DataError naming the file (see Hdf5Source::Hdf5Source)
SourcePtr openHdf5(const std::string& path);

}  // namespace slim::data
