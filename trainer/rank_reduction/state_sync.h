// How ops reach the other ranks (overview: rank_reduction.h). Ops synchronise
// state across ranks (sync batch norm, observer abs-max, the weight gradients
// they reduce themselves) through this interface, without depending on the
// comm layer; CommStateSync (comm_state_sync.h) implements it over a
// communicator. Part of the ops layer (rank_reduction/sources.cmake).
#pragma once

#include <cstddef>

#include "trainer/rank_reduction/exact_sum.h"

namespace slim::rank_reduction {

enum class SyncOp { kSum, kMax };

/// Hook through which ops synchronise state across ranks (sync batch norm,
/// observer abs-max) without depending on the comm layer. Null in the
/// RunContext means a single process: nothing to do.
class StateSync {
 public:
  virtual ~StateSync() = default;
  /// In-place allreduce of n floats over all ranks.
  virtual void allreduce(float* data, size_t n, SyncOp op) = 0;
  /// In-place sum of n fixed-point values (exact_sum.h) over all ranks:
  /// exact, hence identical on every rank and for any split of the batch.
  /// Batch norm statistics and weight gradients use it so that N ranks with
  /// batch B compute the bits of one rank with batch N*B (a float allreduce
  /// of partial sums moves them by an ulp, enough to flip a ReLU and, a few
  /// iterations later, the whole trajectory).
  virtual void sumFixed(Fixed* data, size_t n) = 0;
  /// Number of ranks.
  virtual int size() const = 0;
};

/// Sums `sum` over all ranks in place (with its "not representable" flag)
/// and returns the sum over ranks of `extra` (e.g. a sample count).
Fixed sumOverRanks(StateSync& sync, FixedSum& sum, Fixed extra = 0);

}  // namespace slim::rank_reduction
