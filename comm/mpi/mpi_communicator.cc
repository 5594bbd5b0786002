// MPI collectives as non-blocking calls polled until a deadline.
#include "comm/mpi/mpi_communicator.h"

#include <climits>
#include <cstring>
#include <thread>

#include "comm/detail.h"
#include "comm/mpi/mpi_check.h"
#include "comm/mpi/mpi_runtime.h"
#include "trainer/core/log.h"

namespace slim::comm {
namespace {

using Clock = std::chrono::steady_clock;

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_OP_NULL;
}

std::string allreduceName(ReduceOp op) {
  return std::string("allreduce(") + reduceOpName(op) + ")";
}

/// A pending MPI_Iallreduce; the deadline counts from wait().
class MpiWork : public Work {
 public:
  MpiWork(MpiCommunicator* comm, MPI_Request req, std::string op,
          std::chrono::milliseconds timeout)
      : comm_(comm), req_(req), op_(std::move(op)), timeout_(timeout) {}
  bool test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    SLIM_MPI_CHECK(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), comm_->rank(),
                   op_);
    return done != 0;
  }
  void wait() override {
    if (req_ != MPI_REQUEST_NULL) comm_->waitRequest(req_, op_, timeout_);
  }

 private:
  MpiCommunicator* comm_;
  MPI_Request req_;
  std::string op_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

MpiCommHandle::~MpiCommHandle() {
  // After a failure peers may never join the free; after finalize it is illegal.
  if (c_ == MPI_COMM_NULL || !MpiRuntime::active() || MpiRuntime::failed())
    return;
  SLIM_MPI_CHECK_NOTHROW(MPI_Comm_free(&c_));
}

MpiCommunicator::MpiCommunicator(std::chrono::milliseconds timeout,
                                 MPI_Comm parent)
    : Communicator(timeout), host_(detail::hostName()) {
  MpiRuntime::ensureInitialized();
  MPI_Comm dup = MPI_COMM_NULL;
  SLIM_MPI_CHECK(MPI_Comm_dup(parent, &dup), -1, "MPI_Comm_dup");
  comm_.adopt(dup);
  SLIM_MPI_CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN), -1,
                 "MPI_Comm_set_errhandler");
  SLIM_MPI_CHECK(MPI_Comm_rank(dup, &rank_), -1, "MPI_Comm_rank");
  SLIM_MPI_CHECK(MPI_Comm_size(dup, &size_), rank_, "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() = default;

MPI_Datatype MpiCommunicator::mpiType(DType dtype, size_t count,
                                      const std::string& op) const {
  if (count > static_cast<size_t>(INT_MAX))
    throw CommError(detail::str("rank ", rank_, " on ", host_, ": ", op,
                                ": count ", count, " exceeds INT_MAX (",
                                INT_MAX, "); split the buffer"),
                    rank_, op);
  switch (dtype) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kI64: return MPI_INT64_T;
    case DType::kU8: return MPI_UINT8_T;
    case DType::kI8: return MPI_INT8_T;
    case DType::kI32: return MPI_INT32_T;
  }
  throw CommError(detail::str("rank ", rank_, ": ", op, ": unsupported dtype ",
                              static_cast<int>(dtype)),
                  rank_, op);
}

void MpiCommunicator::waitRequest(MPI_Request& req, const std::string& op,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // Spin briefly for latency, then back off to keep a core free for peers.
  for (int polls = 0;; ++polls) {
    int done = 0;
    SLIM_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE), rank_, op);
    if (done) return;
    if (Clock::now() > deadline) {
      MpiRuntime::markFailed();
      throw CommError(
          detail::str("rank ", rank_, " on ", host_, ": ", op,
                      " timed out after ", timeout.count(),
                      " ms (world size ", size_,
                      "); a peer rank is late, hung or dead"),
          rank_, op);
    }
    if (polls < 1000)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 10000 ? 20 : 200));
  }
}

void MpiCommunicator::allreduce(void* buf, size_t count, DType dtype,
                                ReduceOp op, const CollectiveOptions& opts) {
  if (size_ == 1) return;
  iallreduce(buf, count, dtype, op, opts)->wait();
}

std::unique_ptr<Work> MpiCommunicator::iallreduce(void* buf, size_t count,
                                                  DType dtype, ReduceOp op,
                                                  const CollectiveOptions& opts) {
  if (size_ == 1) return std::make_unique<detail::CompletedWork>();
  const std::string name = describeOp(allreduceName(op), opts.tag);
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  MPI_Request req = MPI_REQUEST_NULL;
  SLIM_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, static_cast<int>(count),
                                mpiType(dtype, count, name), mpiOp(op),
                                comm_.get(), &req),
                 rank_, name);
  return std::make_unique<MpiWork>(this, req, name, timeoutOf(opts));
}

void MpiCommunicator::broadcast(void* buf, size_t count, DType dtype, int root,
                                const CollectiveOptions& opts) {
  const std::string name = describeOp("broadcast", opts.tag);
  if (root < 0 || root >= size_)
    throw CommError(detail::str("rank ", rank_, ": ", name, ": root ", root,
                                " is outside world size ", size_),
                    rank_, "broadcast");
  if (size_ == 1) return;
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  MPI_Request req = MPI_REQUEST_NULL;
  SLIM_MPI_CHECK(MPI_Ibcast(buf, static_cast<int>(count),
                            mpiType(dtype, count, name), root, comm_.get(), &req),
                 rank_, name);
  waitRequest(req, name, timeoutOf(opts));
}

void MpiCommunicator::allgather(const void* send, void* recv, size_t count,
                                DType dtype, const CollectiveOptions& opts) {
  const std::string name = describeOp("allgather", opts.tag);
  if (size_ == 1) {
    if (count > 0 && send != recv)
      std::memmove(recv, send, count * dtypeSize(dtype));
    return;
  }
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  MPI_Datatype t = mpiType(dtype, count, name);
  MPI_Request req = MPI_REQUEST_NULL;
  SLIM_MPI_CHECK(MPI_Iallgather(send, static_cast<int>(count), t, recv,
                                static_cast<int>(count), t, comm_.get(), &req),
                 rank_, name);
  waitRequest(req, name, timeoutOf(opts));
}

void MpiCommunicator::barrier(const CollectiveOptions& opts) {
  if (size_ == 1) return;
  const std::string name = describeOp("barrier", opts.tag);
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  MPI_Request req = MPI_REQUEST_NULL;
  SLIM_MPI_CHECK(MPI_Ibarrier(comm_.get(), &req), rank_, name);
  waitRequest(req, name, timeoutOf(opts));
}

void MpiCommunicator::abort(const std::string& reason, int exit_code) noexcept {
  try {
    log::error("rank ", rank_, " on ", host_, ": aborting the job: ", reason);
  } catch (...) {
  }
  MpiRuntime::markFailed();
  if (MpiRuntime::active())
    SLIM_MPI_CHECK_NOTHROW(
        MPI_Abort(comm_.get() != MPI_COMM_NULL ? comm_.get() : MPI_COMM_WORLD, exit_code));
}

}  // namespace slim::comm
