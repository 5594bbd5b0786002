// Failure semantics over threads-as-ranks (STYLE rules 25, 31): a rank that
// skips a collective makes the others throw CommError within ~2x the timeout,
// naming the op and the missing rank; abort() wakes every waiting rank;
// mismatched collectives are reported instead of corrupting data.
#include <regex>

#include "ranked_test.h"

namespace slim::test {
namespace {

using comm::Communicator;
using comm::ReduceOp;
using Clock = std::chrono::steady_clock;

TEST(CommFailureTest, SkippedCollectiveTimesOutNamingOpAndRank) {
  const auto timeout = std::chrono::milliseconds(400);
  const int n = 4, skipper = 2;
  std::atomic<int> raised{0};
  RankedTest::spawn(
      n,
      [&](Communicator& comm) {
        if (comm.rank() == skipper) return;  // never joins the allreduce
        std::vector<float> buf(10, 1.0f);
        auto t0 = Clock::now();
        try {
          comm.allreduce(buf.data(), buf.size(), DType::kF32, ReduceOp::kSum,
                         {.timeout = {}, .tag = "step 7 grads"});
          ADD_FAILURE() << "rank " << comm.rank() << " did not time out";
        } catch (const CommError& e) {
          auto took = Clock::now() - t0;
          EXPECT_LT(took, 2 * timeout) << e.what();
          EXPECT_EQ(e.rank(), comm.rank());
          EXPECT_EQ(e.op(), "allreduce(sum)");
          std::string msg = e.what();
          EXPECT_NE(msg.find("allreduce(sum) 'step 7 grads'"), std::string::npos)
              << msg;
          EXPECT_NE(msg.find("never arrived: [2]"), std::string::npos) << msg;
          raised++;
        }
      },
      {.timeout = timeout, .barrier_at_end = false});
  EXPECT_EQ(raised.load(), n - 1);
}

TEST(CommFailureTest, LateRankWithinTimeoutSucceeds) {
  RankedTest::spawn(3, [&](Communicator& comm) {
    int64_t v = comm.rank() + 1;
    comm::CollectiveOptions o;
    o.timeout = std::chrono::milliseconds(3000);
    if (comm.rank() == 1) o.test_delay = std::chrono::milliseconds(100);
    comm.allreduce(&v, 1, DType::kI64, ReduceOp::kSum, o);
    EXPECT_EQ(v, 6);
  });
}

TEST(CommFailureTest, AbortWakesWaitingRanksFast) {
  const auto timeout = std::chrono::seconds(10);
  std::atomic<int> raised{0};
  RankedTest::spawn(
      4,
      [&](Communicator& comm) {
        if (comm.rank() == 1) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          comm.abort("disk full on rank 1");
          return;
        }
        auto t0 = Clock::now();
        try {
          comm.barrier({.timeout = {}, .tag = "before checkpoint"});
          ADD_FAILURE() << "barrier passed without rank 1";
        } catch (const CommError& e) {
          EXPECT_LT(Clock::now() - t0, timeout / 4) << e.what();
          std::string msg = e.what();
          EXPECT_NE(msg.find("disk full on rank 1"), std::string::npos) << msg;
          EXPECT_NE(msg.find("barrier 'before checkpoint'"), std::string::npos)
              << msg;
          raised++;
        }
        // Every later collective fails at once, too.
        EXPECT_THROW(comm.barrier(), CommError);
      },
      {.timeout = timeout, .barrier_at_end = false});
  EXPECT_EQ(raised.load(), 3);
}

TEST(CommFailureTest, MismatchedCountIsReported) {
  std::atomic<int> mismatches{0};
  RankedTest::spawn(
      2,
      [&](Communicator& comm) {
        std::vector<float> buf(8, 0.0f);
        size_t count = comm.rank() == 0 ? 4 : 5;
        if (comm.rank() == 1)  // arrive second, so rank 1 sees the mismatch
          std::this_thread::sleep_for(std::chrono::milliseconds(30));
        try {
          comm.allreduce(buf.data(), count, DType::kF32, ReduceOp::kSum);
        } catch (const CommError& e) {
          if (std::string(e.what()).find("mismatch") != std::string::npos)
            mismatches++;
        }
      },
      {.timeout = std::chrono::seconds(5), .barrier_at_end = false});
  EXPECT_GE(mismatches.load(), 1);
}

TEST(CommFailureTest, BroadcastRootOutsideWorldThrows) {
  RankedTest::spawn(2, [&](Communicator& comm) {
    float v = 0;
    EXPECT_THROW(comm.broadcast(&v, 1, DType::kF32, 2), CommError);
    EXPECT_THROW(comm.broadcast(&v, 1, DType::kF32, -1), CommError);
  });
}

TEST(CommFailureTest, FixtureRethrowsRankException) {
  EXPECT_THROW(RankedTest::spawn(3,
                                 [&](Communicator& comm) {
                                   if (comm.rank() == 2)
                                     throw std::runtime_error("rank 2 broke");
                                   comm.barrier();
                                 },
                                 {.timeout = std::chrono::seconds(10)}),
               std::exception);
}

}  // namespace
}  // namespace slim::test
