// A data set as an index plus a reader: N labelled samples of one shape,
// read one at a time when a batch is drawn, never all at once (DESIGN §7b).
//
// Contract of every Source:
//  - immutable after construction; size(), label(), read() are thread-safe
//    (decode workers call read() concurrently on different samples);
//  - read(i, seed, dst) is a pure function of (i, seed): every random choice
//    of an augmenting transform is drawn from Rng(seed), where the caller
//    passes sampleSeed(run seed, epoch, i) — never anything that depends on
//    rank, thread or timing. seed == kNoAugment asks for the deterministic
//    (evaluation) transform;
//  - pixels stay in their stored type (uint8 0..255, or float32) until the
//    batch is assembled (fillBatch normalises them); token ids (int64) are
//    never normalised.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "trainer/core/error.h"
#include "trainer/core/tensor.h"

namespace slim::data {

/// A sample that cannot be read (missing, truncated or corrupt image file, a
/// decompression bomb). Exit code 2 like every DataError; with
/// `skip_bad_images` the batch assembler replaces the sample instead.
class BadSampleError : public DataError {
 public:
  using DataError::DataError;
};

/// The mask value that marks pixels no class is scored on (borders,
/// "void"), as torchvision's and PaddleSeg's segmentation losses and
/// metrics use.
constexpr int64_t kIgnoreLabel = 255;

/// Seed value meaning "no augmentation: use the evaluation transform".
constexpr uint64_t kNoAugment = ~uint64_t{0};

/// The per-sample seed: a pure function of (run seed, epoch, global sample
/// index), never kNoAugment.
uint64_t sampleSeed(uint64_t seed, int64_t epoch, int64_t index);

/// Where the largest label of a data set is written, for the check against
/// the model's number of classes ("train_list.txt:17", "data.h5:y[3]").
struct LabelMax {
  int64_t value = -1;  ///< -1 for an empty set
  std::string where;
};

class Source {
 public:
  virtual ~Source() = default;

  /// Number of samples N.
  virtual int64_t size() const = 0;
  /// {C, H, W} of every sample read() writes; {T} for token ids.
  virtual Shape sampleShape() const = 0;
  /// DType::kU8 (pixels 0..255), DType::kF32 (values as stored) or
  /// DType::kI64 (token ids, sampleShape {T}: fed to the model as they are).
  virtual DType pixelType() const = 0;
  /// Label of sample i (0 <= i < N), >= 0. For dense labels (labelShape()
  /// not empty) and unlabelled sets the value is not used.
  virtual int64_t label(int64_t i) const = 0;
  /// Shape of one sample's labels: {} for one class per sample
  /// (classification), {H, W} for a class per pixel (segmentation masks).
  virtual Shape labelShape() const { return {}; }
  /// False for a data set without labels (HDF5 with `x` only): the
  /// batches' labels are zeros and evaluation scores something else.
  virtual bool hasLabels() const { return true; }
  /// Writes the labels of sample i (numelOf(labelShape()) values, 1 when it
  /// is {}) to `dst` under the same transform read(i, seed) applies (the
  /// same crop and flip for a mask). The default writes label(i).
  virtual void readLabel(int64_t i, uint64_t seed, int64_t* dst) const {
    (void)seed;
    dst[0] = label(i);
  }
  /// The largest label and where it is written.
  virtual LabelMax maxLabel() const = 0;
  /// Writes sample i, C*H*W values of pixelType() in CHW order (T token
  /// ids), to `dst`.
  /// @param i    sample index in [0, N)
  /// @param seed sampleSeed(...) for the training transform, kNoAugment for
  ///             the evaluation transform
  /// @param dst  destination, C*H*W elements
  /// Throws BadSampleError naming where(i) for a sample that cannot be read.
  virtual void read(int64_t i, uint64_t seed, void* dst) const = 0;
  /// Where sample i comes from ("list.txt:12 (img/a.jpg)", "x.h5:x[5]").
  virtual std::string where(int64_t i) const = 0;
  /// One line for logs: format, location, sample count.
  virtual std::string describe() const = 0;
  /// Decoding is expensive (images): worth a pool of decode workers.
  virtual bool expensive() const { return false; }
};

using SourcePtr = std::shared_ptr<const Source>;

}  // namespace slim::data
