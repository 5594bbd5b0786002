// Sharded top-1 evaluation: each rank runs a disjoint contiguous slice of the
// eval set; correct and total counts are summed over ranks, so every rank
// returns the same, exact accuracy.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "comm/communicator.h"
#include "trainer/data/dataset.h"
#include "trainer/graph/executor.h"

namespace slim::train {

struct EvalResult {
  double top1 = 0;
  int64_t correct = 0;
  int64_t total = 0;
};

/// What to feed and read when evaluating a classifier graph.
struct EvalSpec {
  std::string image_input;   ///< graph input receiving the images
  std::string label_input;   ///< graph input receiving labels ("" if none)
  std::string logits;        ///< tensor whose argmax is the prediction
  int64_t batch = 256;       ///< per-rank eval batch
};

/// Evaluates `spec.logits` of `ex` (inference mode) on `ds`.
/// @param comm sums the counts over ranks (world 1 short-circuits)
EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm);

/// Index of the largest of `n` values (first on ties).
int64_t argmax(const float* v, int64_t n);

}  // namespace slim::train
