// NCCL collectives over host buffers. Each operation takes a pinned host +
// device staging pair from a pool, copies in, enqueues H2D, the NCCL call and
// D2H on one stream, records an event and polls it until the deadline. Pinned
// staging keeps every copy asynchronous, so a dead peer cannot block the host
// inside cudaMemcpy. The communicator is nonblocking (config.blocking = 0):
// ncclCommInitRankConfig, a collective's enqueue and the teardown return at
// once and are polled with ncclCommGetAsyncError until their deadline, so a
// peer that never joins makes init fail with CommError instead of hanging.
// A one-rank world goes through NCCL too, so one GPU exercises every path.
#include "comm/nccl/nccl_communicator.h"

#include <cstring>
#include <thread>

#include "comm/detail.h"
#include "comm/nccl/nccl_check.h"
#include "trainer/core/log.h"

namespace slim::comm {
namespace nccl {

using Clock = std::chrono::steady_clock;

/// A pinned host buffer, a device buffer of the same capacity and an event.
struct Staging {
  void* host = nullptr;
  void* dev = nullptr;
  size_t cap = 0;
  cudaEvent_t done = nullptr;
  ~Staging() {
    if (done) SLIM_CUDA_CHECK_NOTHROW(cudaEventDestroy(done));
    if (dev) SLIM_CUDA_CHECK_NOTHROW(cudaFree(dev));
    if (host) SLIM_CUDA_CHECK_NOTHROW(cudaFreeHost(host));
  }
};

struct State {
  int rank = 0;
  int size = 1;
  int device = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool aborted = false;
  std::chrono::milliseconds teardown_timeout{0};
  std::vector<std::unique_ptr<Staging>> pool;

  ~State() {
    if (comm && !aborted) {
      // Finalize flushes and waits for the peers; one that is gone would keep
      // it in progress forever, so past the deadline the comm is aborted.
      ncclResult_t rc = ncclCommFinalize(comm);
      const auto deadline = Clock::now() + teardown_timeout;
      while (rc == ncclSuccess || rc == ncclInProgress) {
        ncclResult_t state = ncclSuccess;
        rc = ncclCommGetAsyncError(comm, &state);
        if (rc != ncclSuccess) break;
        rc = state;
        if (state != ncclInProgress || Clock::now() > deadline) break;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      if (rc == ncclSuccess) {
        SLIM_NCCL_CHECK_NOTHROW(ncclCommDestroy(comm));
      } else {
        logNcclError(rc, "ncclCommFinalize (aborting the communicator)");
        abortComm();
      }
    }
    pool.clear();
    if (stream) SLIM_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream));
  }

  std::unique_ptr<Staging> acquire(size_t bytes, const std::string& op) {
    for (size_t i = 0; i < pool.size(); ++i)
      if (pool[i]->cap >= bytes) {
        auto s = std::move(pool[i]);
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
        return s;
      }
    auto s = std::make_unique<Staging>();
    s->cap = std::max<size_t>(bytes, 256);
    SLIM_CUDA_CHECK(cudaMallocHost(&s->host, s->cap), rank, op);
    SLIM_CUDA_CHECK(cudaMalloc(&s->dev, s->cap), rank, op);
    SLIM_CUDA_CHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming),
                    rank, op);
    return s;
  }

  void abortComm() noexcept {
    if (comm && !aborted) {
      aborted = true;
      SLIM_NCCL_CHECK_NOTHROW(ncclCommAbort(comm));
    }
  }

  CommError timedOut(const std::string& op, std::chrono::milliseconds timeout) {
    abortComm();
    return CommError(detail::str("rank ", rank, " on ", detail::hostName(), ": ",
                                 op, " timed out after ", timeout.count(),
                                 " ms (world size ", size,
                                 "); NCCL communicator aborted"),
                     rank, op);
  }

  /// Polls the communicator's state until it leaves ncclInProgress (init or an
  /// enqueue of the nonblocking comm); aborts and throws on error or timeout.
  void settle(const std::string& op, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      SLIM_NCCL_CHECK(ncclCommGetAsyncError(comm, &state), rank, op);
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        abortComm();
        SLIM_NCCL_CHECK(state, rank, op);
      }
      if (Clock::now() > deadline) throw timedOut(op, timeout);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  /// The return of a nonblocking NCCL call: in progress -> settle before
  /// anything else goes on the stream; an error aborts the comm and throws.
  void enqueued(ncclResult_t rc, const char* call, const std::string& op,
                std::chrono::milliseconds timeout) {
    if (rc == ncclInProgress) return settle(op, timeout);
    if (rc != ncclSuccess) {
      abortComm();
      throwNcclError(rc, call, __FILE__, __LINE__, rank, op);
    }
  }

  /// Non-blocking completion check; throws (after aborting) on NCCL errors.
  bool poll(Staging& s, const std::string& op) {
    cudaError_t q = cudaEventQuery(s.done);
    if (q == cudaSuccess) return true;
    if (q != cudaErrorNotReady) {
      abortComm();
      SLIM_CUDA_CHECK(q, rank, op);
    }
    ncclResult_t async = ncclSuccess;
    SLIM_NCCL_CHECK(ncclCommGetAsyncError(comm, &async), rank, op);
    if (async != ncclSuccess && async != ncclInProgress) {
      abortComm();
      SLIM_NCCL_CHECK(async, rank, op);
    }
    return false;
  }

  /// Polls until `s` completes or the timeout passes (then aborts + throws).
  void wait(Staging& s, const std::string& op, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (int polls = 0; !poll(s, op); ++polls) {
      if (Clock::now() > deadline) throw timedOut(op, timeout);
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  void checkUsable(const std::string& op) {
    if (aborted)
      throw CommError(detail::str("rank ", rank, ": ", op,
                                  ": NCCL communicator was aborted earlier"),
                      rank, op);
    SLIM_CUDA_CHECK(cudaSetDevice(device), rank, op);
  }
};

ncclDataType_t ncclType(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kI64: return ncclInt64;
    case DType::kU8: return ncclUint8;
    case DType::kI8: return ncclInt8;
    case DType::kI32: return ncclInt32;
  }
  return ncclFloat32;
}

ncclRedOp_t ncclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

/// A pending allreduce: result copied back to the user buffer on completion.
class NcclWork : public Work {
 public:
  NcclWork(State* st, std::unique_ptr<Staging> s, void* out, size_t bytes,
           std::string op, std::chrono::milliseconds timeout)
      : st_(st), s_(std::move(s)), out_(out), bytes_(bytes), op_(std::move(op)),
        timeout_(timeout) {}
  bool test() override {
    if (!s_) return true;
    if (!st_->poll(*s_, op_)) return false;
    finish();
    return true;
  }
  void wait() override {
    if (!s_) return;
    st_->wait(*s_, op_, timeout_);
    finish();
  }

 private:
  void finish() {
    if (bytes_ > 0) std::memcpy(out_, s_->host, bytes_);
    st_->pool.push_back(std::move(s_));
  }
  State* st_;
  std::unique_ptr<Staging> s_;
  void* out_;
  size_t bytes_;
  std::string op_;
  std::chrono::milliseconds timeout_;
};

}  // namespace nccl

NcclCommunicator::NcclCommunicator(std::unique_ptr<Communicator> bootstrap,
                                   int device, std::chrono::milliseconds timeout)
    : Communicator(timeout), bootstrap_(std::move(bootstrap)),
      state_(std::make_unique<nccl::State>()) {
  SLIM_ENFORCE(bootstrap_ != nullptr, "NCCL needs a bootstrap communicator");
  auto& st = *state_;
  st.rank = bootstrap_->rank();
  st.size = bootstrap_->size();
  st.device = device;
  const std::string op = "nccl init";
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (st.rank == 0) SLIM_NCCL_CHECK(ncclGetUniqueId(&id), st.rank, op);
  CollectiveOptions bo;
  bo.tag = "nccl unique id";
  bootstrap_->broadcast(&id, sizeof(id), DType::kU8, 0, bo);
  SLIM_CUDA_CHECK(cudaSetDevice(device), st.rank, op);
  SLIM_CUDA_CHECK(cudaStreamCreateWithFlags(&st.stream, cudaStreamNonBlocking),
                  st.rank, op);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  st.teardown_timeout = timeout;
  st.enqueued(ncclCommInitRankConfig(&st.comm, st.size, id, st.rank, &config),
              "ncclCommInitRankConfig", op, timeout);
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::deviceCount() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

int NcclCommunicator::rank() const { return state_->rank; }
int NcclCommunicator::size() const { return state_->size; }

std::unique_ptr<Work> NcclCommunicator::iallreduce(
    void* buf, size_t count, DType dtype, ReduceOp op,
    const CollectiveOptions& opts) {
  auto& st = *state_;
  const std::string name = describeOp(
      std::string("allreduce(") + reduceOpName(op) + ")", opts.tag);
  st.checkUsable(name);
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  const size_t bytes = count * dtypeSize(dtype);
  auto s = st.acquire(bytes, name);
  if (bytes > 0) std::memcpy(s->host, buf, bytes);
  SLIM_CUDA_CHECK(cudaMemcpyAsync(s->dev, s->host, bytes, cudaMemcpyHostToDevice,
                                  st.stream),
                  st.rank, name);
  st.enqueued(ncclAllReduce(s->dev, s->dev, count, nccl::ncclType(dtype),
                            nccl::ncclOp(op), st.comm, st.stream),
              "ncclAllReduce", name, timeoutOf(opts));
  SLIM_CUDA_CHECK(cudaMemcpyAsync(s->host, s->dev, bytes, cudaMemcpyDeviceToHost,
                                  st.stream),
                  st.rank, name);
  SLIM_CUDA_CHECK(cudaEventRecord(s->done, st.stream), st.rank, name);
  return std::make_unique<nccl::NcclWork>(&st, std::move(s), buf, bytes, name,
                                          timeoutOf(opts));
}

void NcclCommunicator::allreduce(void* buf, size_t count, DType dtype,
                                 ReduceOp op, const CollectiveOptions& opts) {
  iallreduce(buf, count, dtype, op, opts)->wait();
}

void NcclCommunicator::broadcast(void* buf, size_t count, DType dtype, int root,
                                 const CollectiveOptions& opts) {
  auto& st = *state_;
  const std::string name = describeOp("broadcast", opts.tag);
  if (root < 0 || root >= st.size)
    throw CommError(detail::str("rank ", st.rank, ": ", name, ": root ", root,
                                " is outside world size ", st.size),
                    st.rank, "broadcast");
  st.checkUsable(name);
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  const size_t bytes = count * dtypeSize(dtype);
  auto s = st.acquire(bytes, name);
  if (bytes > 0 && st.rank == root) std::memcpy(s->host, buf, bytes);
  SLIM_CUDA_CHECK(cudaMemcpyAsync(s->dev, s->host, bytes, cudaMemcpyHostToDevice,
                                  st.stream),
                  st.rank, name);
  st.enqueued(ncclBroadcast(s->dev, s->dev, count, nccl::ncclType(dtype), root,
                            st.comm, st.stream),
              "ncclBroadcast", name, timeoutOf(opts));
  SLIM_CUDA_CHECK(cudaMemcpyAsync(s->host, s->dev, bytes, cudaMemcpyDeviceToHost,
                                  st.stream),
                  st.rank, name);
  SLIM_CUDA_CHECK(cudaEventRecord(s->done, st.stream), st.rank, name);
  nccl::NcclWork(&st, std::move(s), buf, bytes, name, timeoutOf(opts)).wait();
}

void NcclCommunicator::allgather(const void* send, void* recv, size_t count,
                                 DType dtype, const CollectiveOptions& opts) {
  auto& st = *state_;
  const size_t bytes = count * dtypeSize(dtype);
  const std::string name = describeOp("allgather", opts.tag);
  st.checkUsable(name);
  if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
  const size_t total = bytes * static_cast<size_t>(st.size);
  auto s = st.acquire(total + bytes, name);
  // Layout in the staging pair: [gathered: size*bytes][send: bytes].
  auto* dev = static_cast<unsigned char*>(s->dev);
  auto* host = static_cast<unsigned char*>(s->host);
  if (bytes > 0) std::memcpy(host + total, send, bytes);
  SLIM_CUDA_CHECK(cudaMemcpyAsync(dev + total, host + total, bytes,
                                  cudaMemcpyHostToDevice, st.stream),
                  st.rank, name);
  st.enqueued(ncclAllGather(dev + total, dev, count, nccl::ncclType(dtype),
                            st.comm, st.stream),
              "ncclAllGather", name, timeoutOf(opts));
  SLIM_CUDA_CHECK(cudaMemcpyAsync(host, dev, total, cudaMemcpyDeviceToHost,
                                  st.stream),
                  st.rank, name);
  SLIM_CUDA_CHECK(cudaEventRecord(s->done, st.stream), st.rank, name);
  nccl::NcclWork(&st, std::move(s), recv, total, name, timeoutOf(opts)).wait();
}

void NcclCommunicator::barrier(const CollectiveOptions& opts) {
  int32_t token = 0;
  CollectiveOptions o = opts;
  if (o.tag.empty()) o.tag = "barrier";
  allreduce(&token, 1, DType::kI32, ReduceOp::kSum, o);
}

void NcclCommunicator::abort(const std::string& reason, int exit_code) noexcept {
  state_->abortComm();
  if (bootstrap_) bootstrap_->abort(reason, exit_code);
}

}  // namespace slim::comm
