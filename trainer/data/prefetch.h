// Background batch assembly: one worker thread samples and fills batch k+1
// while the trainer computes on batch k. The batches and their order are
// exactly those of calling sampler.next() + fillBatch() in the trainer
// thread; position() counts only batches handed out, so it is what a
// checkpoint must store. Worker exceptions resurface on the next next().
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "trainer/data/dataset.h"
#include "trainer/data/sampler.h"

namespace slim::data {

class Prefetcher {
 public:
  /// Starts the worker, which immediately prepares the first batch.
  /// @param data    data set; must outlive the prefetcher and stay unchanged
  /// @param sampler sampler to draw from (copied; positioned by the caller)
  Prefetcher(const Dataset& data, ShardedSampler sampler);
  /// Stops and joins the worker (never throws).
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  /// Hands out the next batch. The tensors are swapped with the prepared
  /// ones, so the caller's old buffers are reused for a later batch (keep no
  /// other references to them if you want the reuse).
  /// @param images  receives (B, C, H, W) float32
  /// @param labels  receives (B) int64
  /// @param indices if not null, receives the sample indices of the batch
  /// Rethrows an exception raised while preparing the batch.
  void next(Tensor& images, Tensor& labels, std::vector<int64_t>* indices = nullptr);

  /// Sampler position after the batches handed out so far (for checkpoints).
  SamplerPosition position() const;

  /// Discards the prepared batch and continues from (epoch, sample_offset).
  void seek(int64_t epoch, int64_t sample_offset);

 private:
  void run();

  const Dataset& data_;
  ShardedSampler sampler_;  // touched only by the worker while it runs
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;    // a prepared batch (or error) waits in the slot
  bool busy_ = false;     // the worker is filling outside the lock
  bool stop_ = false;
  Tensor images_, labels_;        // the slot
  std::vector<int64_t> indices_;  // the slot's indices
  SamplerPosition slot_after_;    // sampler position after the slot's batch
  SamplerPosition handed_;        // position after the last handed-out batch
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace slim::data
