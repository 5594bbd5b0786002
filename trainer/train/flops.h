// Floating-point operation counts of a graph after a forward pass (from the
// actual tensor shapes), for GFLOP/s figures in logs and scripts/bench.
#pragma once

#include <cstdint>

#include "trainer/graph/executor.h"

namespace slim::train {

/// Forward FLOPs (2 per multiply-add) of the Conv, Gemm and MatMul nodes of
/// the executor's graph, using the shapes of its last forward. A training step
/// costs about 3x this (forward, input gradients, weight gradients).
double forwardFlops(graph::Executor& ex);

}  // namespace slim::train
