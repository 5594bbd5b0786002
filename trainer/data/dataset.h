// A data set as the trainer sees it: a Source (the index + reader, source.h)
// plus what turns its stored pixels into the model's input — normalisation,
// whether the training transform runs, what to do with unreadable samples.
// Pixels stay in their stored type until a batch is assembled:
// out = (x * pixel_scale - mean[c]) / std[c], float32 NCHW.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"
#include "trainer/data/source.h"

namespace slim::data {

/// Counters a batch assembler updates (shared by decode workers).
struct ReadStats {
  std::atomic<int64_t> bad_samples{0};  ///< unreadable samples replaced (skip_bad_images)
};

struct Dataset {
  /// The samples; null for "no data set" (size() == 0).
  SourcePtr source;
  /// Multiplier applied to stored values before mean/std: pixel_range/255
  /// for uint8 pixels (1/255 by default), 1 for float data (taken as stored).
  float pixel_scale = 1.0f / 255.0f;
  /// Per-channel mean and std (size 1 = same for every channel, or C).
  /// Empty means mean 0 / std 1.
  std::vector<float> mean;
  std::vector<float> std;
  /// Training transform (random crop/flip keyed by sampleSeed(seed, epoch,
  /// index)); false: the deterministic evaluation transform.
  bool augment = false;
  uint64_t seed = 0;
  /// Replace an unreadable sample by the next readable one (index i+1, i+2,
  /// ... with i's random key) and count it, instead of failing.
  bool skip_bad = false;
  /// Where bad samples are counted (may be null).
  std::shared_ptr<ReadStats> stats = std::make_shared<ReadStats>();

  int64_t size() const { return source ? source->size() : 0; }
  /// True when the samples are int64 token ids (no normalisation).
  bool tokens() const { return source && source->pixelType() == DType::kI64; }
  /// Shape of one sample, {C, H, W}, or {T} for token ids.
  Shape sampleShape() const;
  /// Where the data came from, for messages.
  std::string describe() const { return source ? source->describe() : "no data"; }
};

/// An in-memory source over (N, C, H, W) images (uint8 or float32) and (N)
/// int64 labels, or (N, H, W) int64 masks (IDX files, tests).
class TensorSource : public Source {
 public:
  /// Validates shapes and dtypes; throws DataError naming `name`.
  TensorSource(Tensor images, Tensor labels, std::string name);
  int64_t size() const override { return labels_.dim(0); }
  Shape sampleShape() const override;
  DType pixelType() const override { return images_.dtype(); }
  int64_t label(int64_t i) const override { return labels_.data<int64_t>()[i * label_size_]; }
  LabelMax maxLabel() const override;
  Shape labelShape() const override;
  void readLabel(int64_t i, uint64_t seed, int64_t* dst) const override;
  void read(int64_t i, uint64_t seed, void* dst) const override;
  std::string where(int64_t i) const override;
  std::string describe() const override { return name_; }
  const Tensor& images() const { return images_; }

 private:
  Tensor images_, labels_;
  std::string name_;
  int64_t label_size_ = 1;  // values per sample: 1, or H*W for masks
};

/// A Dataset over in-memory tensors with pixel_scale 1/255 for uint8 and 1
/// for float images.
Dataset tensorDataset(Tensor images, Tensor labels, std::string name);

/// Checks mean/std against the channel count (size 0, 1 or C, std > 0; none
/// for token ids). Throws DataError naming the data set.
void validate(const Dataset& d);

/// Reads the samples `indices` (in order) into `images` (B, C, H, W) float32,
/// normalised — or (B, T) int64 token ids as stored — and `labels` (B) int64
/// (or (B, H, W) masks). Reuses the storage of both tensors
/// when it is large enough and not shared (Tensor::resize).
/// @param d       source data set
/// @param indices sample indices in [0, N); throws DataError otherwise
/// @param epoch   the epoch the batch belongs to (keys the random transform)
/// @param images  output batch images, resized to (B, C, H, W) float32
/// @param labels  output batch labels, resized to (B) int64
void fillBatch(const Dataset& d, const std::vector<int64_t>& indices, int64_t epoch,
               Tensor& images, Tensor& labels);

/// Evaluation-style overload (epoch 0).
inline void fillBatch(const Dataset& d, const std::vector<int64_t>& indices,
                      Tensor& images, Tensor& labels) {
  fillBatch(d, indices, 0, images, labels);
}

}  // namespace slim::data
