// comm::Communicator: the small, type-erased collective interface every rank's
// training code talks to (DESIGN.md §4, STYLE rules 3, 5, 6, 25). Backends live
// under comm/{local,mpi,nccl}/ and are picked at run time (comm/registry.h);
// callers never know which one they hold. Every blocking call has a timeout and
// fails with slim::CommError naming the rank, the operation and its tag.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "trainer/core/error.h"
#include "trainer/core/tensor.h"

namespace slim::comm {

/// Element types come from the core Tensor (float32, int64, uint8, int8, int32).
using slim::DType;

/// Reduction applied element-wise by allreduce.
enum class ReduceOp { kSum, kMax, kMin };

/// "sum", "max", "min" for messages.
const char* reduceOpName(ReduceOp op);

/// Per-call options (STYLE rule 5). Defaults give the communicator's timeout.
struct CollectiveOptions {
  /// Deadline for this call; zero means the communicator's default timeout
  /// (YAML `Distributed.timeout_s`).
  std::chrono::milliseconds timeout{0};
  /// Names the operation in errors ("grad bucket 3", "bn stats conv1").
  std::string tag;
  /// Test-only knob: sleep this long before joining the collective, to make
  /// one rank late on purpose. Never set outside tests.
  std::chrono::milliseconds test_delay{0};
};

/// Handle of a non-blocking collective. The buffers passed to the call that
/// returned it must stay untouched until wait() returns.
class Work {
 public:
  virtual ~Work() = default;
  /// Drives progress without blocking.
  /// @return true once the operation has completed (successfully or not).
  virtual bool test() = 0;
  /// Blocks until completion or the call's deadline; rethrows the
  /// operation's failure (CommError) on the waiting thread (STYLE rule 26).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// @return this process's rank in [0, size()).
  virtual int rank() const = 0;
  /// @return the number of ranks.
  virtual int size() const = 0;
  /// @return the backend name: "local", "threads", "mpi", "nccl".
  virtual std::string backend() const = 0;
  /// @return the timeout used when CollectiveOptions::timeout is zero.
  std::chrono::milliseconds defaultTimeout() const { return default_timeout_; }

  /// In-place reduction of `count` elements of `buf` over all ranks; on
  /// return every rank holds the same result.
  /// @param buf   host buffer of count elements of `dtype`
  /// @param count number of elements (zero is allowed)
  /// @param dtype element type
  /// @param op    reduction
  /// @param opts  timeout and tag
  virtual void allreduce(void* buf, size_t count, DType dtype, ReduceOp op,
                         const CollectiveOptions& opts = {}) = 0;

  /// Non-blocking allreduce; the result is in `buf` once Work::wait() returns.
  /// Collectives are matched across ranks by issue order, so every rank must
  /// issue the same sequence of calls.
  /// @return a handle to wait on (never null)
  virtual std::unique_ptr<Work> iallreduce(void* buf, size_t count, DType dtype,
                                           ReduceOp op,
                                           const CollectiveOptions& opts = {}) = 0;

  /// Copies `count` elements of rank `root`'s `buf` into every rank's `buf`.
  /// @param root rank whose data is sent, in [0, size())
  virtual void broadcast(void* buf, size_t count, DType dtype, int root,
                         const CollectiveOptions& opts = {}) = 0;

  /// Gathers `count` elements from every rank: `recv` (size()*count elements)
  /// holds rank r's `send` at offset r*count on every rank.
  virtual void allgather(const void* send, void* recv, size_t count, DType dtype,
                         const CollectiveOptions& opts = {}) = 0;

  /// Returns once every rank has entered the barrier (or throws on timeout).
  virtual void barrier(const CollectiveOptions& opts = {}) = 0;

  /// Ends the whole job as fast as possible so peers fail instead of waiting
  /// for this rank (MPI: MPI_Abort; threads: wakes every waiting rank with a
  /// CommError). Call it before rethrowing a fatal error. Never throws.
  /// @param reason logged and, where possible, shown by peers
  /// @param exit_code the job's exit status where the launcher takes it from
  ///        the abort (mpirun returns MPI_Abort's code): the error's class, so
  ///        a config error every rank found exits 2 under mpirun as on 1 rank
  virtual void abort(const std::string& reason, int exit_code = 1) noexcept = 0;

 protected:
  explicit Communicator(std::chrono::milliseconds default_timeout)
      : default_timeout_(default_timeout) {}
  /// The effective timeout of `opts` (its own, or the default).
  std::chrono::milliseconds timeoutOf(const CollectiveOptions& opts) const {
    return opts.timeout.count() > 0 ? opts.timeout : default_timeout_;
  }

 private:
  std::chrono::milliseconds default_timeout_;
};

/// Default timeout when the config does not say (Distributed.timeout_s).
constexpr std::chrono::milliseconds kDefaultTimeout{std::chrono::minutes(5)};

/// "allreduce(sum) 'tag'" — how errors name an operation.
std::string describeOp(const std::string& op, const std::string& tag);

}  // namespace slim::comm
