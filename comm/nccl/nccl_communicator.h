// NcclCommunicator: collectives through NCCL on this rank's GPU. Bootstrap is
// separate from transport (STYLE rule 7): rank 0's ncclUniqueId travels over
// another Communicator (MPI in production, threads in tests), then
// ncclCommInitRank. Host buffers are staged through pinned memory to a device
// buffer, reduced, and copied back. Completion is polled (cudaEventQuery +
// ncclCommGetAsyncError) until the deadline; on timeout or error the NCCL
// communicator is aborted (ncclCommAbort) before CommError is thrown.
// Only compiled when SLIM_HAVE_NCCL is 1; include only from the registry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace slim::comm {

namespace nccl {
struct State;
}

class NcclCommunicator : public Communicator {
 public:
  /// Collective over all ranks of `bootstrap`: creates the NCCL communicator.
  /// @param bootstrap carries the unique id; kept for abort() and teardown
  /// @param device    CUDA device of this rank (usually local_rank % devices)
  /// @param timeout   default timeout of every collective
  NcclCommunicator(std::unique_ptr<Communicator> bootstrap, int device,
                   std::chrono::milliseconds timeout = kDefaultTimeout);
  ~NcclCommunicator() override;

  /// @return the number of CUDA devices (0 when there is none or no driver)
  static int deviceCount() noexcept;

  int rank() const override;
  int size() const override;
  std::string backend() const override { return "nccl"; }

  void allreduce(void* buf, size_t count, DType dtype, ReduceOp op,
                 const CollectiveOptions& opts = {}) override;
  /// Stages and enqueues; the Work polls the GPU. It refers to this
  /// communicator, which must outlive it.
  std::unique_ptr<Work> iallreduce(void* buf, size_t count, DType dtype,
                                   ReduceOp op,
                                   const CollectiveOptions& opts = {}) override;
  void broadcast(void* buf, size_t count, DType dtype, int root,
                 const CollectiveOptions& opts = {}) override;
  void allgather(const void* send, void* recv, size_t count, DType dtype,
                 const CollectiveOptions& opts = {}) override;
  void barrier(const CollectiveOptions& opts = {}) override;
  /// ncclCommAbort, then the bootstrap's abort (MPI_Abort under mpirun).
  void abort(const std::string& reason, int exit_code = 1) noexcept override;

 private:
  std::unique_ptr<Communicator> bootstrap_;
  std::unique_ptr<nccl::State> state_;
};

}  // namespace slim::comm
