// Sharded top-1 evaluation: each rank runs a disjoint contiguous slice of the
// eval set; correct and total counts are summed over ranks, so every rank
// returns the same, exact accuracy.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>
#include <map>
#include <string>

#include "comm/communicator.h"
#include "trainer/data/loader.h"
#include "trainer/graph/executor.h"

namespace slim::train {

struct EvalResult {
  double top1 = 0;
  int64_t correct = 0;
  int64_t total = 0;
  /// SIGUSR1/SIGTERM arrived during the pass on some rank: the counts are
  /// partial, and every rank knows it.
  bool stopped = false;
};

/// What to feed and read when evaluating a classifier graph.
struct EvalSpec {
  std::string image_input;   ///< graph input receiving the images
  std::string label_input;   ///< graph input receiving labels ("" if none)
  std::string logits;        ///< tensor whose argmax is the prediction
  int64_t batch = 256;       ///< per-rank eval batch
  int workers = 1;           ///< decode workers (data::decodeWorkers)
};

/// Called with every evaluated batch (this rank's, in order) and the
/// predicted class of each sample: what the ONNX Runtime check compares.
using PredictionSink =
    std::function<void(const data::Batch& batch, const std::vector<int64_t>& predicted)>;

/// Evaluates `spec.logits` of `ex` (inference mode) on `ds`; each rank runs
/// its contiguous shard (data::evalShard).
/// @param comm sums the counts over ranks (world 1 short-circuits)
/// @param sink if set, receives every batch with its predictions
EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm, const PredictionSink& sink = {});

/// One pass over `ds` scoring several logits tensors of the same forward
/// (student and teacher): results in the order of `logits`; `sink` gets
/// the predictions of logits[0].
std::vector<EvalResult> evaluateMany(graph::Executor& ex, const EvalSpec& spec,
                                     const std::vector<std::string>& logits,
                                     const data::Dataset& ds, comm::Communicator& comm,
                                     const PredictionSink& sink = {});

/// Index of the largest of `n` values (first on ties).
int64_t argmax(const float* v, int64_t n);

}  // namespace slim::train
