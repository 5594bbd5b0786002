// Deterministic sharded sampling for data-parallel training.
//
// Epoch e visits the permutation P_e of [0, N), a Fisher-Yates shuffle driven
// by Rng(Rng::mix(seed, e)) (identity when shuffle is off), so it depends only
// on (seed, e) — never on world size or rank. A global batch is the next
// `global_batch` permutation positions from the current sample offset; rank r
// takes the contiguous slice [r*G/W, (r+1)*G/W) of it. Concatenating the rank
// slices in rank order therefore gives exactly what one rank with batch G
// would see, and the position (epoch, sample offset) is world-size free:
// a checkpoint taken with 4 ranks resumes with 1 or 8 ranks at the same sample.
#pragma once

#include <cstdint>
#include <vector>

namespace slim::data {

/// Where the sampler stands: the next batch starts at permutation position
/// `sample_offset` of epoch `epoch`. Stored in checkpoints.
struct SamplerPosition {
  int64_t epoch = 0;
  int64_t sample_offset = 0;
  bool operator==(const SamplerPosition&) const = default;
};

class ShardedSampler {
 public:
  /// @param dataset_size N, number of samples (> 0)
  /// @param global_batch G, samples per step over all ranks (> 0, divisible
  ///                     by world_size)
  /// @param world_size   W, number of ranks (> 0)
  /// @param rank         this rank, in [0, W)
  /// @param seed         shuffle seed; epoch e uses Rng::mix(seed, e)
  /// @param shuffle      false visits samples in file order every epoch
  /// @param drop_last    true skips the final partial global batch of an
  ///                     epoch; false yields it, split over ranks as evenly
  ///                     as possible (a rank may then get fewer samples)
  /// Throws ConfigError on invalid arguments.
  ShardedSampler(int64_t dataset_size, int64_t global_batch, int world_size,
                 int rank, uint64_t seed, bool shuffle, bool drop_last = true);

  /// Fills `out` with this rank's indices of the next global batch and
  /// advances; rolls over to the next epoch when the current one is done.
  /// @param out receives this rank's sample indices, in order
  void next(std::vector<int64_t>& out);

  /// Convenience overload of next(out).
  std::vector<int64_t> next();

  /// This rank's slice of the global batch starting at `sample_offset` of
  /// `epoch`, without moving the sampler (pure function of its arguments).
  /// @param epoch         epoch index
  /// @param sample_offset first permutation position of the global batch
  /// @param out           receives the indices
  void batchAt(int64_t epoch, int64_t sample_offset,
               std::vector<int64_t>& out) const;

  /// Moves to (epoch, sample_offset); any offset in [0, N] is accepted, also
  /// one that is not a multiple of the global batch (a resume after a change
  /// of global batch size). Throws ConfigError when out of range.
  /// @param epoch         epoch index (>= 0)
  /// @param sample_offset global samples already consumed in that epoch
  void seek(int64_t epoch, int64_t sample_offset);

  /// The position the next call to next() starts from, normalised so that a
  /// finished epoch reads as {epoch + 1, 0}.
  SamplerPosition position() const;

  /// Global batches per epoch: floor(N/G) with drop_last, else ceil(N/G).
  int64_t batchesPerEpoch() const;
  /// Samples this rank gets from a full global batch (G / W).
  int64_t localBatch() const { return global_batch_ / world_; }
  int64_t globalBatch() const { return global_batch_; }
  int64_t datasetSize() const { return n_; }

  /// The permutation of epoch `epoch` (size N); exposed for tests and
  /// debugging.
  std::vector<int64_t> permutation(int64_t epoch) const;

 private:
  // True when a global batch starting at `offset` has samples to give.
  bool hasBatchAt(int64_t offset) const;
  // Makes perm_ hold the permutation of `epoch` (cached).
  void ensurePermutation(int64_t epoch) const;

  int64_t n_, global_batch_;
  int world_, rank_;
  uint64_t seed_;
  bool shuffle_, drop_last_;
  SamplerPosition pos_;
  mutable int64_t perm_epoch_ = -1;
  mutable std::vector<uint32_t> perm_;  // the cached epoch's permutation
};

/// A half-open index range [begin, end).
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

/// Evaluation shard of `rank`: contiguous ranges [N*r/W, N*(r+1)/W) that are
/// disjoint and together cover every sample exactly once (sizes differ by at
/// most one; nothing is dropped or repeated).
/// @param dataset_size N (>= 0)
/// @param world_size   W (> 0)
/// @param rank         r in [0, W)
/// @return this rank's range
IndexRange evalShard(int64_t dataset_size, int world_size, int rank);

}  // namespace slim::data
