// MpiCommunicator: collectives over Open MPI. Each call starts the
// non-blocking variant (MPI_Iallreduce, MPI_Ibcast, ...) and polls MPI_Test
// until done or the deadline, so no call waits forever (STYLE rule 25). On a
// timeout or MPI error it throws CommError with rank, host, op and
// MPI_Error_string; the caller then calls abort() (MPI_Abort) so peers fail
// fast. Use one MpiCommunicator from one thread at a time.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <string>

#include "comm/communicator.h"

namespace slim::comm {

/// Owns a duplicated MPI_Comm; frees it (nothrow) unless MPI is finalized.
class MpiCommHandle {
 public:
  MpiCommHandle() = default;
  explicit MpiCommHandle(MPI_Comm c) : c_(c) {}
  ~MpiCommHandle();
  MpiCommHandle(const MpiCommHandle&) = delete;
  MpiCommHandle& operator=(const MpiCommHandle&) = delete;
  MPI_Comm get() const { return c_; }
  /// Takes ownership of `c` (the handle must be empty).
  void adopt(MPI_Comm c) { c_ = c; }

 private:
  MPI_Comm c_ = MPI_COMM_NULL;
};

class MpiCommunicator : public Communicator {
 public:
  /// Initialises MPI if needed (MpiRuntime) and duplicates `parent`.
  /// @param timeout default timeout of every collective
  /// @param parent  communicator to duplicate (MPI_COMM_WORLD by default)
  explicit MpiCommunicator(std::chrono::milliseconds timeout = kDefaultTimeout,
                           MPI_Comm parent = MPI_COMM_WORLD);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  /// @return the duplicated communicator (for bootstraps and benchmarks)
  MPI_Comm handle() const { return comm_.get(); }

  void allreduce(void* buf, size_t count, DType dtype, ReduceOp op,
                 const CollectiveOptions& opts = {}) override;
  /// The returned Work polls MPI_Test; its deadline counts from wait(). It
  /// refers to this communicator, which must outlive it.
  std::unique_ptr<Work> iallreduce(void* buf, size_t count, DType dtype,
                                   ReduceOp op,
                                   const CollectiveOptions& opts = {}) override;
  void broadcast(void* buf, size_t count, DType dtype, int root,
                 const CollectiveOptions& opts = {}) override;
  void allgather(const void* send, void* recv, size_t count, DType dtype,
                 const CollectiveOptions& opts = {}) override;
  void barrier(const CollectiveOptions& opts = {}) override;
  /// MPI_Abort on this communicator: every rank of the job is terminated.
  void abort(const std::string& reason, int exit_code = 1) noexcept override;

  /// Polls `req` until it completes or `timeout` passes.
  /// @throws CommError naming `op` on timeout or MPI error
  void waitRequest(MPI_Request& req, const std::string& op,
                   std::chrono::milliseconds timeout);

 private:
  /// The MPI datatype of `dtype`, and `count` checked to fit an int.
  MPI_Datatype mpiType(DType dtype, size_t count, const std::string& op) const;

  MpiCommHandle comm_;
  int rank_ = 0;
  int size_ = 1;
  std::string host_;
};

}  // namespace slim::comm
