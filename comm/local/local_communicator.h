// LocalCommunicator: world size 1 as a real backend (STYLE rule 6). Every
// collective is a no-op or a copy, so laptops and CI run the full trainer
// without MPI.
#pragma once

#include "comm/communicator.h"

namespace slim::comm {

class LocalCommunicator : public Communicator {
 public:
  /// @param timeout default timeout reported by defaultTimeout() (unused: no
  ///                call here can wait)
  explicit LocalCommunicator(std::chrono::milliseconds timeout = kDefaultTimeout)
      : Communicator(timeout) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }

  /// No-op: the sum/max/min over one rank is the input.
  void allreduce(void* buf, size_t count, DType dtype, ReduceOp op,
                 const CollectiveOptions& opts = {}) override;
  /// Returns an already completed Work.
  std::unique_ptr<Work> iallreduce(void* buf, size_t count, DType dtype,
                                   ReduceOp op,
                                   const CollectiveOptions& opts = {}) override;
  /// No-op; `root` must be 0.
  void broadcast(void* buf, size_t count, DType dtype, int root,
                 const CollectiveOptions& opts = {}) override;
  /// Copies send into recv (unless they alias).
  void allgather(const void* send, void* recv, size_t count, DType dtype,
                 const CollectiveOptions& opts = {}) override;
  /// No-op.
  void barrier(const CollectiveOptions& opts = {}) override {}
  /// Logs the reason; there are no peers to stop.
  void abort(const std::string& reason, int exit_code = 1) noexcept override;
};

}  // namespace slim::comm
