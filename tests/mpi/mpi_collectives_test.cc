// slim_mpi_tests: the comm layer over real Open MPI (STYLE rule 32). Own
// main: MPI_Init, tests skip when MPI is not initialised, and a rank-ordered
// summary (rank 0 prints every rank's result). Small on purpose: the
// threads-as-ranks suite covers the logic; this confirms the MPI wiring.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>

#include "comm/grad_reducer.h"
#include "comm/mpi/mpi_communicator.h"
#include "tests/unit/comm/oracle.h"

namespace slim::test {
namespace {

using comm::ReduceOp;

/// One communicator for the whole binary (created after MPI_Init).
comm::MpiCommunicator* g_comm = nullptr;

class MpiCollectiveTest
    : public ::testing::TestWithParam<std::tuple<size_t, DType>> {
 protected:
  void SetUp() override {
    if (g_comm == nullptr) GTEST_SKIP() << "MPI is not initialised";
  }
};

TEST_P(MpiCollectiveTest, AllreduceBroadcastAllgather) {
  auto& c = *g_comm;
  const auto [count, t] = GetParam();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
    auto buf = oracleInput(t, c.rank(), count);
    c.allreduce(buf.data(), count, t, op, {.timeout = {}, .tag = "oracle"});
    EXPECT_EQ(firstMismatch(buf.data(), t, count, [&](size_t i) {
                return oracleReduce(t, op, c.size(), i);
              }), "") << comm::reduceOpName(op);
  }
  for (int root : {0, c.size() - 1}) {
    auto buf = oracleInput(t, c.rank() == root ? root : root + 1, count);
    c.broadcast(buf.data(), count, t, root);
    EXPECT_EQ(firstMismatch(buf.data(), t, count,
                            [&](size_t i) { return oracleValue(t, root, i); }),
              "") << "root " << root;
  }
  auto send = oracleInput(t, c.rank(), count);
  std::vector<unsigned char> recv(count * c.size() * dtypeSize(t) + 1);
  c.allgather(send.data(), recv.data(), count, t);
  EXPECT_EQ(firstMismatch(recv.data(), t, count * c.size(), [&](size_t j) {
              return oracleValue(t, static_cast<int>(j / count), j % count);
            }), "");
  c.barrier();
}

TEST_P(MpiCollectiveTest, IallreduceWaitedOutOfOrder) {
  auto& c = *g_comm;
  const auto [count, t] = GetParam();
  auto a = oracleInput(t, c.rank(), count);
  auto b = oracleInput(t, c.rank(), count);
  auto wa = c.iallreduce(a.data(), count, t, ReduceOp::kSum);
  auto wb = c.iallreduce(b.data(), count, t, ReduceOp::kMin);
  wb->wait();
  wa->wait();
  EXPECT_EQ(firstMismatch(a.data(), t, count, [&](size_t i) {
              return oracleReduce(t, ReduceOp::kSum, c.size(), i);
            }), "");
  EXPECT_EQ(firstMismatch(b.data(), t, count, [&](size_t i) {
              return oracleReduce(t, ReduceOp::kMin, c.size(), i);
            }), "");
}

INSTANTIATE_TEST_SUITE_P(
    Mpi, MpiCollectiveTest,
    ::testing::Combine(::testing::Values<size_t>(0, 1, 7, 1000, 100003),
                       ::testing::Values(DType::kF32, DType::kI64, DType::kU8)));

class MpiReducerTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    if (g_comm == nullptr) GTEST_SKIP() << "MPI is not initialised";
  }
};

TEST_P(MpiReducerTest, BucketedMeanIsExact) {
  auto& c = *g_comm;
  const std::vector<size_t> sizes = {3, 0, 1000, 17, 4096, 1};
  std::vector<std::vector<float>> g(sizes.size());
  comm::GradReducer reducer(c, GetParam());
  for (int step = 0; step < 2; ++step) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      g[k].resize(sizes[k]);
      for (size_t i = 0; i < sizes[k]; ++i)
        g[k][i] = float((c.rank() + 1) * (k + 1) + i % 11 + step);
      reducer.add(std::string("p").append(std::to_string(k)), g[k].data(), sizes[k]);
    }
    reducer.finalize();
    const int n = c.size();
    for (size_t k = 0; k < sizes.size(); ++k)
      for (size_t i = 0; i < sizes[k]; ++i)
        ASSERT_EQ(g[k][i],
                  float((k + 1) * n * (n + 1) / 2 + n * (i % 11 + step)) / float(n))
            << "step " << step << " grad " << k << " element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Mpi, MpiReducerTest,
                         ::testing::Values<size_t>(4, 256, 8192, 1 << 22));

TEST(MpiTimeoutTest, DeadlinePassesWithoutPeerMatching) {
  if (g_comm == nullptr) GTEST_SKIP() << "MPI is not initialised";
  auto& c = *g_comm;
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // Rank 0 posts a receive no one matches (point-to-point on the duplicated
  // communicator, so no collective is left dangling) and must time out.
  if (c.rank() == 0) {
    int v = 0;
    MPI_Request req = MPI_REQUEST_NULL;
    ASSERT_EQ(MPI_Irecv(&v, 1, MPI_INT, 1, 999, c.handle(), &req), MPI_SUCCESS);
    auto t0 = std::chrono::steady_clock::now();
    try {
      c.waitRequest(req, "recv 'never sent'", std::chrono::milliseconds(300));
      ADD_FAILURE() << "no timeout";
    } catch (const CommError& e) {
      EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(600));
      EXPECT_NE(std::string(e.what()).find("recv 'never sent' timed out"),
                std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(" on "), std::string::npos)
          << "names the host: " << e.what();
    }
    ASSERT_EQ(MPI_Cancel(&req), MPI_SUCCESS);
    ASSERT_EQ(MPI_Wait(&req, MPI_STATUS_IGNORE), MPI_SUCCESS);
  }
  c.barrier();
}

}  // namespace
}  // namespace slim::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int provided = 0;
  const bool mpi_ok =
      MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) == MPI_SUCCESS;
  int rank = 0, size = 1;
  std::unique_ptr<slim::comm::MpiCommunicator> comm;
  if (mpi_ok) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    comm = std::make_unique<slim::comm::MpiCommunicator>(std::chrono::seconds(60));
    slim::test::g_comm = comm.get();
  }
  // Only rank 0 streams gtest's output; every rank's summary follows in order.
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) delete listeners.Release(listeners.default_result_printer());
  int rc = RUN_ALL_TESTS();
  if (!mpi_ok) return rc;

  const auto* unit = ::testing::UnitTest::GetInstance();
  char line[512];
  std::string failed;
  for (int i = 0; i < unit->total_test_suite_count(); ++i) {
    const auto* s = unit->GetTestSuite(i);
    for (int j = 0; j < s->total_test_count(); ++j)
      if (s->GetTestInfo(j)->result()->Failed())
        failed += std::string(" ") + s->name() + "." + s->GetTestInfo(j)->name();
  }
  std::snprintf(line, sizeof(line), "[rank %d] %d tests, %d failed%s%.380s", rank,
                unit->test_to_run_count(), unit->failed_test_count(),
                failed.empty() ? "" : ":", failed.c_str());
  std::vector<char> all(rank == 0 ? sizeof(line) * size : 1);
  MPI_Gather(line, sizeof(line), MPI_CHAR, all.data(), sizeof(line), MPI_CHAR, 0,
             MPI_COMM_WORLD);
  if (rank == 0)
    for (int r = 0; r < size; ++r) std::printf("%s\n", all.data() + r * sizeof(line));
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  comm.reset();
  MPI_Finalize();
  return worst;
}
