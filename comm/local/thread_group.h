// Threads as ranks: an in-process rendezvous through which N threads act as
// N ranks of one job (STYLE rule 28, anti-pattern B). Every collective,
// reducer and sharded component is tested over this before any mpirun test.
// Collectives are matched by issue order (a per-rank sequence number), each
// has a deadline, and a timeout names the ranks that never arrived.
#pragma once

#include <chrono>
#include <memory>

#include "comm/communicator.h"

namespace slim::comm {

namespace detail {
class Rendezvous;
}

/// A group of `size` in-process ranks. Create one, hand communicator(r) to
/// thread r. The group may be destroyed while communicators are still alive
/// (they share the rendezvous).
class ThreadGroup {
 public:
  /// @param size    number of ranks (>= 1)
  /// @param timeout default timeout of every collective
  explicit ThreadGroup(int size,
                       std::chrono::milliseconds timeout = kDefaultTimeout);
  ~ThreadGroup();

  /// @return the number of ranks
  int size() const { return size_; }

  /// A communicator for rank `rank` (call once per rank; use it from one
  /// thread at a time, like an MPI communicator).
  /// @param rank in [0, size())
  std::unique_ptr<Communicator> communicator(int rank);

  /// Aborts the whole group: every waiting and future collective throws a
  /// CommError mentioning `reason`. Used by test fixtures when a rank fails.
  void abort(int rank, const std::string& reason) noexcept;

 private:
  int size_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<detail::Rendezvous> rendezvous_;
};

}  // namespace slim::comm
