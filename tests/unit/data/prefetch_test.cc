// Prefetcher hands out exactly the batches of sampler.next() + fillBatch(),
// tracks the handed-out position, re-seeks, and surfaces worker errors.
#include <gtest/gtest.h>

#include <cstring>

#include "trainer/data/prefetch.h"

namespace slim::data {
namespace {

// N samples of shape (1, 2, 2) whose pixels encode the sample index.
Dataset synthetic(int64_t n) {
  Dataset d;
  d.source = "synthetic";
  d.images = Tensor({n, 1, 2, 2}, DType::kU8);
  d.labels = Tensor({n}, DType::kI64);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) d.images.data<uint8_t>()[i * 4 + k] = static_cast<uint8_t>(i + k);
    d.labels.data<int64_t>()[i] = i % 10;
  }
  d.mean = {0.5f};
  d.std = {0.25f};
  return d;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

TEST(Prefetcher, MatchesSynchronousLoading) {
  Dataset d = synthetic(100);
  ShardedSampler ref(100, 8, 2, 1, 17, true);
  Prefetcher pf(d, ShardedSampler(100, 8, 2, 1, 17, true));
  Tensor x, y, rx, ry;
  std::vector<int64_t> idx;
  for (int i = 0; i < 30; ++i) {  // 12 batches per epoch: crosses two epochs
    pf.next(x, y, &idx);
    auto want = ref.next();
    fillBatch(d, want, rx, ry);
    ASSERT_EQ(idx, want) << i;
    ASSERT_TRUE(sameBits(x, rx)) << i;
    ASSERT_TRUE(sameBits(y, ry)) << i;
    ASSERT_EQ(pf.position(), ref.position()) << i;
  }
  pf.seek(0, 40);
  ref.seek(0, 40);
  for (int i = 0; i < 5; ++i) {
    pf.next(x, y, &idx);
    ASSERT_EQ(idx, ref.next());
  }
  EXPECT_EQ(pf.position(), (SamplerPosition{0, 80}));
  EXPECT_THROW(pf.seek(0, 101), ConfigError);
}

TEST(Prefetcher, WorkerErrorsResurfaceInNext) {
  Dataset d = synthetic(10);
  // A sampler over more samples than the data set holds draws bad indices.
  Prefetcher pf(d, ShardedSampler(1000, 500, 1, 0, 1, true));
  Tensor x, y;
  EXPECT_THROW(pf.next(x, y), DataError);
}

}  // namespace
}  // namespace slim::data
