// Collectives over threads-as-ranks, parametrised over world size 1..8,
// element counts {0, 1, 7, 1000, 100003} and dtypes, with closed-form oracles.
#include <atomic>
#include <tuple>

#include "comm/local/local_communicator.h"
#include "ranked_test.h"
#include "oracle.h"

namespace slim::test {
namespace {

using comm::Communicator;
using comm::ReduceOp;

class CollectiveTest
    : public ::testing::TestWithParam<std::tuple<int, size_t, DType>> {
 protected:
  int n() const { return std::get<0>(GetParam()); }
  size_t count() const { return std::get<1>(GetParam()); }
  DType dtype() const { return std::get<2>(GetParam()); }
};

TEST_P(CollectiveTest, AllreduceSumMaxMin) {
  const DType t = dtype();
  const size_t c = count();
  RankedTest::spawn(n(), [&](Communicator& comm) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
      auto buf = oracleInput(t, comm.rank(), c);
      comm.allreduce(buf.data(), c, t, op, {.timeout = {}, .tag = "oracle"});
      EXPECT_EQ(firstMismatch(buf.data(), t, c,
                              [&](size_t i) {
                                return oracleReduce(t, op, comm.size(), i);
                              }),
                "")
          << "rank " << comm.rank() << " op " << comm::reduceOpName(op);
    }
  });
}

TEST_P(CollectiveTest, IallreduceOutOfOrderWait) {
  const DType t = dtype();
  const size_t c = count();
  RankedTest::spawn(n(), [&](Communicator& comm) {
    auto a = oracleInput(t, comm.rank(), c);
    auto b = oracleInput(t, comm.rank(), c);
    auto wa = comm.iallreduce(a.data(), c, t, ReduceOp::kSum);
    auto wb = comm.iallreduce(b.data(), c, t, ReduceOp::kMax);
    wb->wait();  // waiting in the opposite order must not deadlock
    wa->wait();
    EXPECT_TRUE(wa->test());
    EXPECT_EQ(firstMismatch(a.data(), t, c, [&](size_t i) {
                return oracleReduce(t, ReduceOp::kSum, comm.size(), i);
              }), "");
    EXPECT_EQ(firstMismatch(b.data(), t, c, [&](size_t i) {
                return oracleReduce(t, ReduceOp::kMax, comm.size(), i);
              }), "");
  });
}

TEST_P(CollectiveTest, BroadcastFromFirstAndLastRank) {
  const DType t = dtype();
  const size_t c = count();
  RankedTest::spawn(n(), [&](Communicator& comm) {
    for (int root : {0, comm.size() - 1}) {
      // Non-roots start from another rank's pattern, so a no-op would fail.
      auto buf = oracleInput(t, comm.rank() == root ? root : root + 1, c);
      comm.broadcast(buf.data(), c, t, root);
      EXPECT_EQ(firstMismatch(buf.data(), t, c,
                              [&](size_t i) { return oracleValue(t, root, i); }),
                "")
          << "rank " << comm.rank() << " root " << root;
    }
  });
}

TEST_P(CollectiveTest, AllgatherPlacesRankBlocks) {
  const DType t = dtype();
  const size_t c = count();
  RankedTest::spawn(n(), [&](Communicator& comm) {
    auto send = oracleInput(t, comm.rank(), c);
    std::vector<unsigned char> recv(c * comm.size() * dtypeSize(t) + 1, 0xAB);
    comm.allgather(send.data(), recv.data(), c, t);
    EXPECT_EQ(firstMismatch(recv.data(), t, c * comm.size(),
                            [&](size_t j) {
                              return oracleValue(t, static_cast<int>(j / c),
                                                 j % c);
                            }),
              "")
        << "rank " << comm.rank();
  });
}

std::string paramName(
    const ::testing::TestParamInfo<CollectiveTest::ParamType>& p) {
  return "n" + std::to_string(std::get<0>(p.param)) + "_c" +
         std::to_string(std::get<1>(p.param)) + "_" +
         dtypeName(std::get<2>(p.param));
}

INSTANTIATE_TEST_SUITE_P(
    Threads, CollectiveTest,
    ::testing::Combine(::testing::Range(1, 9),
                       ::testing::Values<size_t>(0, 1, 7, 1000, 100003),
                       ::testing::Values(DType::kF32, DType::kI64, DType::kU8)),
    paramName);

class BarrierTest : public ::testing::TestWithParam<int> {};

TEST_P(BarrierTest, NoRankLeavesBeforeAllArrive) {
  const int n = GetParam();
  std::atomic<int> arrived[3] = {0, 0, 0};
  RankedTest::spawn(n, [&](Communicator& comm) {
    for (int round = 0; round < 3; ++round) {
      // Stagger arrivals so an early exit would be observed.
      std::this_thread::sleep_for(std::chrono::milliseconds(comm.rank() % 3));
      arrived[round]++;
      comm.barrier();
      EXPECT_EQ(arrived[round].load(), comm.size())
          << "rank " << comm.rank() << " left round " << round << " early";
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Threads, BarrierTest, ::testing::Range(1, 9));

TEST(LocalCommunicatorTest, WorldOfOneShortCircuits) {
  comm::LocalCommunicator comm;
  EXPECT_EQ(comm.size(), 1);
  EXPECT_EQ(comm.backend(), "local");
  auto buf = oracleInput(DType::kF32, 0, 7);
  auto before = buf;
  comm.allreduce(buf.data(), 7, DType::kF32, ReduceOp::kSum);
  comm.iallreduce(buf.data(), 7, DType::kF32, ReduceOp::kMax)->wait();
  comm.broadcast(buf.data(), 7, DType::kF32, 0);
  comm.barrier();
  EXPECT_EQ(buf, before);
  std::vector<unsigned char> recv(buf.size(), 0);
  comm.allgather(buf.data(), recv.data(), 7, DType::kF32);
  EXPECT_EQ(recv, buf);
  EXPECT_THROW(comm.broadcast(buf.data(), 7, DType::kF32, 1), CommError);
}

}  // namespace
}  // namespace slim::test
