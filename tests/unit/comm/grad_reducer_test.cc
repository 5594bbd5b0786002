// GradReducer (bucketed, overlapped) and InlineGradReducer against the exact
// mean over ranks, for several world and bucket sizes, over several steps
// (bucket memory is reused), plus determinism of the bucket layout.
#include <tuple>

#include "comm/grad_reducer.h"
#include "ranked_test.h"

namespace slim::test {
namespace {

using comm::Communicator;

// Gradient sizes in the order backward reports them (zero included).
const std::vector<size_t> kSizes = {1, 17, 0, 300, 5, 1024, 3, 64};

/// Gradient k, element i on rank r at step s: small integers, exact sums.
float gradValue(int s, int r, size_t k, size_t i) {
  return static_cast<float>((r + 1) * (k + 1) + (i % 13) + s);
}
/// Exact mean of gradValue over n ranks (sum is exact, one division).
float meanValue(int s, int n, size_t k, size_t i) {
  float sum = static_cast<float>((k + 1) * n * (n + 1) / 2 + n * (i % 13 + s));
  return sum / static_cast<float>(n);
}

void checkReducer(Communicator& comm, comm::Reducer& reducer, int steps) {
  std::vector<std::vector<float>> grads(kSizes.size());
  for (int s = 0; s < steps; ++s) {
    for (size_t k = 0; k < kSizes.size(); ++k) {
      grads[k].resize(kSizes[k]);
      for (size_t i = 0; i < kSizes[k]; ++i)
        grads[k][i] = gradValue(s, comm.rank(), k, i);
      reducer.add(std::string("p").append(std::to_string(k)), grads[k].data(), kSizes[k]);
    }
    reducer.finalize();
    for (size_t k = 0; k < kSizes.size(); ++k)
      for (size_t i = 0; i < kSizes[k]; ++i)
        ASSERT_EQ(grads[k][i], meanValue(s, comm.size(), k, i))
            << "rank " << comm.rank() << " step " << s << " grad " << k
            << " element " << i;
  }
}

class GradReducerTest
    : public ::testing::TestWithParam<std::tuple<int, size_t>> {};

TEST_P(GradReducerTest, BucketedEqualsExactMean) {
  const auto [n, bucket_bytes] = GetParam();
  RankedTest::spawn(n, [&](Communicator& comm) {
    comm::GradReducer reducer(comm, bucket_bytes);
    checkReducer(comm, reducer, 3);
    // Same layout on every rank: gather each rank's bucket count.
    int64_t buckets = static_cast<int64_t>(reducer.lastBucketCount());
    std::vector<int64_t> all(comm.size());
    comm.allgather(&buckets, all.data(), 1, DType::kI64);
    for (int64_t b : all) EXPECT_EQ(b, buckets);
    if (n > 1 && bucket_bytes <= sizeof(float)) {
      EXPECT_EQ(buckets, 7) << "one bucket per non-empty gradient";
    }
    if (n > 1 && bucket_bytes >= (1u << 20)) {
      EXPECT_EQ(buckets, 1);
    }
  });
}

TEST_P(GradReducerTest, InlineEqualsExactMean) {
  const int n = std::get<0>(GetParam());
  RankedTest::spawn(n, [&](Communicator& comm) {
    comm::InlineGradReducer reducer(comm);
    checkReducer(comm, reducer, 2);
  });
}

INSTANTIATE_TEST_SUITE_P(
    Threads, GradReducerTest,
    ::testing::Combine(::testing::Values(1, 2, 3, 5, 8),
                       ::testing::Values<size_t>(4, 64, 1000, 1 << 20)));

TEST(GradReducerFailureTest, MissingRankFailsFinalizeNamingBucket) {
  std::atomic<int> raised{0};
  RankedTest::spawn(
      3,
      [&](Communicator& comm) {
        if (comm.rank() == 1) return;  // never reduces
        std::vector<float> g(100, 1.0f);
        comm::GradReducer reducer(comm, 64);
        try {
          reducer.add("conv1.weight", g.data(), g.size());
          reducer.finalize();
          ADD_FAILURE() << "finalize succeeded without rank 1";
        } catch (const CommError& e) {
          std::string msg = e.what();
          EXPECT_NE(msg.find("grad bucket 0"), std::string::npos) << msg;
          EXPECT_NE(msg.find("conv1.weight"), std::string::npos) << msg;
          raised++;
        }
      },
      {.timeout = std::chrono::milliseconds(300), .barrier_at_end = false});
  EXPECT_EQ(raised.load(), 2);
}

TEST(BusBandwidthTest, FollowsNcclTestsFormula) {
  EXPECT_DOUBLE_EQ(comm::allreduceBusBandwidth(10.0, 2), 10.0);
  EXPECT_DOUBLE_EQ(comm::allreduceBusBandwidth(10.0, 4), 15.0);
  EXPECT_DOUBLE_EQ(comm::allreduceBusBandwidth(10.0, 1), 0.0);
}

}  // namespace
}  // namespace slim::test
