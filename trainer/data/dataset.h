// In-memory image classification data set and batch assembly. Images stay in
// their stored type (uint8 pixels or float) and are normalised only when a
// batch is formed: out = (x * pixel_scale - mean[c]) / std[c], float32 NCHW.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::data {

/// A whole data set held in memory.
struct Dataset {
  /// images: (N, C, H, W), dtype uint8 or float32.
  Tensor images;
  /// labels: (N), int64.
  Tensor labels;
  /// Multiplier applied to raw pixel values before mean/std: 1/255 for uint8
  /// pixels (x/255), 1 for float data already in [0, 1].
  float pixel_scale = 1.0f / 255.0f;
  /// Per-channel mean and std (size 1 = same for every channel, or C).
  /// Empty means mean 0 / std 1.
  std::vector<float> mean;
  std::vector<float> std;
  /// Where the data came from (file names), for messages.
  std::string source;

  /// Number of samples N.
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  /// Shape of one sample, {C, H, W}.
  Shape sampleShape() const;
  /// 1 + the largest label (0 for an empty set).
  int64_t numClasses() const;
};

/// Checks that images/labels have matching N, valid dtypes and that mean/std
/// have size 0, 1 or C with std > 0. Throws DataError naming `d.source`.
/// @param d the data set to check
void validate(const Dataset& d);

/// Copies the samples `indices` (in order) into `images` (B, C, H, W) float32,
/// normalised, and `labels` (B) int64. Reuses the storage of both tensors
/// when it is large enough and not shared (Tensor::resize).
/// @param d       source data set
/// @param indices sample indices in [0, N); throws DataError otherwise
/// @param images  output batch images, resized to (B, C, H, W) float32
/// @param labels  output batch labels, resized to (B) int64
void fillBatch(const Dataset& d, const std::vector<int64_t>& indices,
               Tensor& images, Tensor& labels);

}  // namespace slim::data
