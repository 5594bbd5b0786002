// The trainer's side of the policy (overview: rank_reduction.h): each weight
// gradient backward reports goes down the path planReduction chose for it.
// Part of the train layer (rank_reduction/sources.cmake).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "comm/grad_reducer.h"

namespace slim::rank_reduction {

/// Routes gradients in the order backward makes them ready: one the ops
/// already reduced over ranks exactly is final and left alone; every other
/// one goes into comm::GradReducer's bucketed float allreduce (the mean over
/// ranks). On one rank nothing is sent.
class GradientRouter {
 public:
  /// @param comm          communicator (must outlive the router)
  /// @param bucket_bytes  GradReducer's bucket size
  /// @param opts          GradReducer's collective options
  /// @param exact         true for a parameter whose gradient the ops reduced
  ///                      (graph::Executor::gradReducedOverRanks)
  GradientRouter(comm::Communicator& comm, size_t bucket_bytes, comm::CollectiveOptions opts,
                 std::function<bool(const std::string&)> exact);

  /// A gradient backward reports as complete: `count` floats at `grad`,
  /// untouched until finalize() returns.
  void add(const std::string& name, float* grad, size_t count);
  /// After backward: waits for the float path; every gradient is then the
  /// mean over ranks.
  void finalize();

 private:
  const int world_;
  comm::GradReducer float_path_;
  std::function<bool(const std::string&)> exact_;
};

}  // namespace slim::rank_reduction
