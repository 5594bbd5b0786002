// NCCL backend (built only with SLIM_HAVE_NCCL): one rank per visible GPU (up
// to 4) as threads, bootstrapped over a ThreadGroup; closed-form oracles. One
// GPU runs a one-rank world, which still goes through NCCL and the staging.
// Skips when the machine has no CUDA device.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "comm/grad_reducer.h"
#include "comm/local/thread_group.h"
#include "comm/nccl/nccl_communicator.h"
#include "oracle.h"

namespace slim::test {
namespace {

using comm::ReduceOp;

template <class F>
void spawnNccl(int n, F fn) {
  comm::ThreadGroup boot(n, std::chrono::seconds(60));
  std::vector<std::thread> threads;
  std::mutex mu;
  std::exception_ptr first;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r, b = boot.communicator(r)]() mutable {
      try {
        comm::NcclCommunicator nccl(std::move(b), r, std::chrono::seconds(60));
        fn(nccl);
        nccl.barrier();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
        boot.abort(r, "rank failed");
      }
    });
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices_ = comm::NcclCommunicator::deviceCount();
    if (devices_ == 0) GTEST_SKIP() << "no CUDA device";
  }
  int ranks() const { return std::min(devices_, 4); }
  int devices_ = 0;
};

TEST_F(NcclTest, CollectivesMatchOracles) {
  spawnNccl(ranks(), [](comm::Communicator& c) {
    for (DType t : {DType::kF32, DType::kI64, DType::kU8})
      for (size_t count : {size_t{0}, size_t{7}, size_t{100003}}) {
        for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
          auto buf = oracleInput(t, c.rank(), count);
          c.allreduce(buf.data(), count, t, op);
          EXPECT_EQ(firstMismatch(buf.data(), t, count, [&](size_t i) {
                      return oracleReduce(t, op, c.size(), i);
                    }), "");
        }
        auto b = oracleInput(t, c.rank() == 0 ? 0 : 1, count);
        c.broadcast(b.data(), count, t, 0);
        EXPECT_EQ(firstMismatch(b.data(), t, count,
                                [&](size_t i) { return oracleValue(t, 0, i); }),
                  "");
        auto send = oracleInput(t, c.rank(), count);
        std::vector<unsigned char> recv(count * c.size() * dtypeSize(t) + 1);
        c.allgather(send.data(), recv.data(), count, t);
        EXPECT_EQ(firstMismatch(recv.data(), t, count * c.size(),
                                [&](size_t j) {
                                  return oracleValue(t, static_cast<int>(j / count),
                                                     j % count);
                                }),
                  "");
      }
  });
}

TEST_F(NcclTest, GradReducerMean) {
  spawnNccl(ranks(), [](comm::Communicator& c) {
    std::vector<float> a(1000), b(33);
    for (size_t i = 0; i < a.size(); ++i) a[i] = float(c.rank() + i % 5);
    for (size_t i = 0; i < b.size(); ++i) b[i] = float(2 * c.rank());
    comm::GradReducer reducer(c, 1024);
    reducer.add("a", a.data(), a.size());
    reducer.add("b", b.data(), b.size());
    reducer.finalize();
    const int n = c.size();
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(a[i], float(n * (n - 1) / 2 + n * (i % 5)) / float(n));
    for (size_t i = 0; i < b.size(); ++i)
      ASSERT_EQ(b[i], float(n * (n - 1)) / float(n));
  });
}

// Rank 1 gets the unique id and then fails before ncclCommInitRank (its
// device does not exist): rank 0's init must end with CommError at its
// deadline instead of waiting for the peer forever.
TEST_F(NcclTest, InitTimesOutWhenAPeerNeverJoins) {
  comm::ThreadGroup boot(2, std::chrono::seconds(30));
  const auto timeout = std::chrono::seconds(3);
  std::string err0, err1;
  double seconds0 = 0;
  std::thread peer([&, b = boot.communicator(1)]() mutable {
    try {
      comm::NcclCommunicator nccl(std::move(b), devices_, timeout);
    } catch (const CommError& e) {
      err1 = e.what();
    }
  });
  const auto start = std::chrono::steady_clock::now();
  try {
    comm::NcclCommunicator nccl(boot.communicator(0), 0, timeout);
  } catch (const CommError& e) {
    err0 = e.what();
  }
  seconds0 = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                           start).count();
  peer.join();
  EXPECT_NE(err1.find("cudaSetDevice"), std::string::npos) << err1;
  EXPECT_NE(err0.find("nccl init"), std::string::npos) << err0;
  EXPECT_NE(err0.find("timed out after 3000 ms"), std::string::npos) << err0;
  EXPECT_GE(seconds0, 2.9);
  EXPECT_LT(seconds0, 30.0) << "the abort after the deadline took too long";
}

}  // namespace
}  // namespace slim::test
