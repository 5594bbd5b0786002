// Gradient reduction policy, the one place that sees the communicator during
// backward (STYLE rule 4, DESIGN.md §3/§7). The executor reports gradients in
// the order they become ready; GradReducer copies them into buckets of about
// bucket_bytes and starts a non-blocking allreduce as soon as a bucket fills,
// overlapping communication with the rest of backward. finalize() waits and
// writes the mean back. InlineGradReducer is the unbucketed reference.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace slim::comm {

/// add() gradients in ready order, then finalize() once per step.
class Reducer {
 public:
  virtual ~Reducer() = default;
  /// Registers a ready gradient. The buffer must stay valid and untouched
  /// until finalize() returns. Every rank must add the same names and sizes
  /// in the same order.
  /// @param name  parameter name (used in error tags)
  /// @param grad  `count` floats
  virtual void add(const std::string& name, float* grad, size_t count) = 0;
  /// Completes all reductions: every added buffer holds the mean over ranks.
  virtual void finalize() = 0;
};

/// Bucketed, overlapped reducer. Bucket assignment depends only on the add()
/// order and sizes: a gradient goes to the open bucket unless it would
/// overflow a non-empty one (then the bucket is launched first); a bucket is
/// launched as soon as it holds >= bucket_bytes. Bucket memory is reused
/// across steps, so the steady state does not allocate.
class GradReducer : public Reducer {
 public:
  /// @param comm         communicator (must outlive the reducer)
  /// @param bucket_bytes target bucket size in bytes (> 0)
  /// @param opts         timeout/tag base for the bucket allreduces
  GradReducer(Communicator& comm, size_t bucket_bytes,
              CollectiveOptions opts = {});
  ~GradReducer() override;

  void add(const std::string& name, float* grad, size_t count) override;
  void finalize() override;

  /// @return number of buckets launched in the last completed step
  size_t lastBucketCount() const { return last_buckets_; }

 private:
  struct Entry {
    float* grad;
    size_t count;
    size_t offset;  ///< in floats, inside the bucket
  };
  struct Bucket {
    std::vector<float> data;  ///< capacity kept across steps
    std::vector<Entry> entries;
    size_t floats = 0;        ///< floats in use this step
    std::string first_name;
    std::unique_ptr<Work> work;
  };
  void launch();  ///< starts the allreduce of the open bucket

  Communicator& comm_;
  size_t bucket_floats_;
  CollectiveOptions opts_;
  std::vector<std::unique_ptr<Bucket>> buckets_;  ///< buckets_[0..open_] are in use this step
  size_t open_ = 0;              ///< index of the bucket being filled
  size_t open_floats_ = 0;       ///< floats in the open bucket
  size_t last_buckets_ = 0;
};

/// Reference reducer: a blocking allreduce per gradient, immediately.
class InlineGradReducer : public Reducer {
 public:
  explicit InlineGradReducer(Communicator& comm, CollectiveOptions opts = {})
      : comm_(comm), opts_(std::move(opts)) {}
  void add(const std::string& name, float* grad, size_t count) override;
  void finalize() override {}

 private:
  Communicator& comm_;
  CollectiveOptions opts_;
};

/// Bus bandwidth of an allreduce (nccl-tests convention, STYLE rule 38):
/// busBw = algBw * 2(n-1)/n, where algBw = bytes / seconds.
/// @param alg_bw algorithm bandwidth (any unit; the result has the same)
/// @param n      world size
double allreduceBusBandwidth(double alg_bw, int n);

}  // namespace slim::comm
