// Background batch assembly: a pool of decode workers fills the batches of a
// plan ahead of the trainer, at most `depth` of them at a time, and hands
// them out strictly in plan order.
//
// Protocol (all under mu_): a worker takes the next sequence number and asks
// the plan for its indices (so the plan is called in order, one batch at a
// time), fills the batch outside the lock, and files it under its number;
// next() waits for the number it hands out next. What a batch holds depends
// only on its indices and epoch (fillBatch, sampleSeed), never on which
// worker filled it or when, so the batches are those of calling the plan and
// fillBatch in the trainer's own thread. A worker's exception is filed in
// place of its batch and resurfaces from next() in order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "trainer/data/dataset.h"

namespace slim::data {

/// One assembled batch.
struct Batch {
  Tensor images;                 ///< (B, C, H, W) float32, normalised; (B, T) int64 token ids
  Tensor labels;                 ///< (B) int64, or (B, H, W) masks
  std::vector<int64_t> indices;  ///< sample indices, in batch order
  int64_t epoch = 0;
};

/// Fills the indices and epoch of the next batch; false when there is none
/// (the end of an evaluation pass). Called in order, under the loader's lock.
using BatchPlan = std::function<bool(std::vector<int64_t>& indices, int64_t& epoch)>;

struct LoaderOptions {
  int workers = 1;  ///< decode threads (>= 1)
  int depth = 2;    ///< batches prepared ahead (>= workers)
};

class BatchLoader {
 public:
  /// Starts the workers, which begin filling at once.
  /// @param data data set; must outlive the loader and stay unchanged
  BatchLoader(const Dataset& data, BatchPlan plan, LoaderOptions opts);
  /// Stops and joins the workers (never throws).
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// Hands out the next batch in plan order; false when the plan is done.
  /// The tensors are swapped, so the caller's old buffers are reused.
  /// Rethrows the exception raised while preparing this batch.
  bool next(Batch& out);

  /// Seconds next() spent waiting for a batch not yet ready.
  double waitSeconds() const { return wait_s_; }

 private:
  void work();

  const Dataset& data_;
  BatchPlan plan_;
  const int depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t planned_ = 0;     // batches taken from the plan
  int64_t handed_ = 0;      // batches handed out
  bool plan_done_ = false;  // the plan said there are no more
  bool stop_ = false;
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready_;  // filed batches by sequence number
  std::vector<Batch> spare_;       // buffers handed back by next()
  double wait_s_ = 0;
  std::vector<std::thread> workers_;
};

/// Decode workers for a data set: `configured` if > 0, else the cores this
/// rank's compute threads leave free (at least 1) for expensive sources
/// (image files) and 1 otherwise.
int decodeWorkers(const Dataset& d, int64_t configured);

}  // namespace slim::data
