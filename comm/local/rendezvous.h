// detail::Rendezvous: the shared meeting point of a ThreadGroup. Each
// collective is a slot keyed by its sequence number; every rank deposits a
// copy of its input, waits (with a deadline) until all ranks have, then reads
// the inputs it needs. Inputs are immutable once complete, so ranks consume
// them concurrently without holding the lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace slim::comm::detail {

/// What one rank says about a collective; all ranks must agree on it.
struct OpSignature {
  std::string op;     ///< "allreduce(sum)", "broadcast", ...
  std::string tag;    ///< CollectiveOptions::tag
  size_t count = 0;   ///< elements per rank
  DType dtype = DType::kF32;
  int root = 0;       ///< broadcast root (0 otherwise)
};

class Rendezvous {
 public:
  explicit Rendezvous(int size) : size_(size) {}

  /// Deposits `bytes` bytes of `data` as `rank`'s input of collective `seq`,
  /// waits until every rank has deposited or `deadline` passes, then calls
  /// consume(inputs) with all ranks' inputs (indexed by rank).
  /// @throws CommError on timeout (naming missing ranks), on a signature
  ///         mismatch between ranks, or when the group was aborted.
  void exchange(int rank, uint64_t seq, const OpSignature& sig,
                const void* data, size_t bytes,
                std::chrono::steady_clock::time_point deadline,
                std::chrono::milliseconds timeout,
                const std::function<void(
                    const std::vector<std::vector<unsigned char>>&)>& consume);

  /// Wakes every waiting rank with a CommError; later calls fail at once.
  void abort(int rank, const std::string& reason);

 private:
  struct Slot {
    OpSignature sig;
    int first_rank = -1;
    std::vector<std::vector<unsigned char>> inputs;
    std::vector<bool> arrived;
    int n_arrived = 0;
    int n_left = 0;
  };
  [[noreturn]] void failLocked(int rank, const OpSignature& sig,
                               const std::string& why);

  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Slot> slots_;
  bool aborted_ = false;
  int abort_rank_ = -1;
  std::string abort_reason_;
};

}  // namespace slim::comm::detail
