// RankedTest::spawn: runs fn(Communicator&) on `size` threads acting as ranks
// of one ThreadGroup (STYLE rule 28). The first exception thrown by any rank
// aborts the group (so no rank waits for a dead peer) and is rethrown on the
// test thread; each rank ends with a barrier before teardown.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/local/thread_group.h"

namespace slim::test {

struct SpawnOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(20)};
  bool barrier_at_end = true;  ///< false for tests where ranks fail on purpose
};

class RankedTest {
 public:
  using RankFn = std::function<void(comm::Communicator&)>;

  static void spawn(int size, const RankFn& fn, SpawnOptions o = {}) {
    comm::ThreadGroup group(size, o.timeout);
    std::mutex mu;
    std::exception_ptr first;
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r) {
      threads.emplace_back([&, r, c = group.communicator(r)]() mutable {
        try {
          fn(*c);
          if (o.barrier_at_end) c->barrier({.timeout = {}, .tag = "teardown"});
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!first) first = std::current_exception();
          group.abort(r, "rank " + std::to_string(r) + " threw");
        }
      });
    }
    for (auto& t : threads) t.join();
    if (first) std::rethrow_exception(first);
  }
};

}  // namespace slim::test
