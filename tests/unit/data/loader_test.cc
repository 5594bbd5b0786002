// BatchLoader hands out exactly the batches of plan + fillBatch() in the
// trainer's thread, in order, whatever the worker count; errors resurface in
// order; skip_bad_images replaces and counts unreadable samples.
#include <gtest/gtest.h>

#include <cstring>

#include "trainer/data/loader.h"
#include "trainer/data/sampler.h"

namespace slim::data {
namespace {

// N samples of shape (1, 2, 2) whose pixels encode the sample index, plus
// `seed` when augmenting (a stand-in for a random crop).
class Synthetic : public Source {
 public:
  explicit Synthetic(int64_t n, int64_t bad = -1) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  Shape sampleShape() const override { return {1, 2, 2}; }
  DType pixelType() const override { return DType::kU8; }
  int64_t label(int64_t i) const override { return i % 10; }
  LabelMax maxLabel() const override { return {9, "synthetic"}; }
  void read(int64_t i, uint64_t seed, void* dst) const override {
    if (i == bad_) throw BadSampleError("sample " + std::to_string(i) + " is broken");
    auto* p = static_cast<uint8_t*>(dst);
    for (int k = 0; k < 4; ++k) p[k] = static_cast<uint8_t>(i + k + (seed == kNoAugment ? 0 : seed));
  }
  std::string where(int64_t i) const override { return "synthetic:" + std::to_string(i); }
  std::string describe() const override { return "synthetic"; }

 private:
  int64_t n_, bad_;
};

Dataset synthetic(int64_t n, int64_t bad = -1) {
  Dataset d;
  d.source = std::make_shared<Synthetic>(n, bad);
  d.mean = {0.5f};
  d.std = {0.25f};
  d.augment = true;
  d.seed = 17;
  return d;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

BatchPlan samplerPlan(ShardedSampler s) {
  return [s](std::vector<int64_t>& idx, int64_t& epoch) mutable {
    epoch = s.position().epoch;
    s.next(idx);
    return true;
  };
}

TEST(BatchLoader, MatchesSynchronousLoadingForAnyWorkerCount) {
  Dataset d = synthetic(100);
  for (int workers : {1, 2, 3, 5}) {
    ShardedSampler ref(100, 8, 2, 1, 17, true);
    BatchLoader loader(d, samplerPlan(ShardedSampler(100, 8, 2, 1, 17, true)),
                       {workers, workers + 1});
    Batch b;
    Tensor rx, ry;
    for (int i = 0; i < 30; ++i) {  // 12 batches per epoch: crosses two epochs
      const int64_t epoch = ref.position().epoch;
      auto want = ref.next();
      fillBatch(d, want, epoch, rx, ry);
      ASSERT_TRUE(loader.next(b)) << i;
      ASSERT_EQ(b.indices, want) << "workers " << workers << " batch " << i;
      ASSERT_EQ(b.epoch, epoch);
      ASSERT_TRUE(sameBits(b.images, rx)) << i;
      ASSERT_TRUE(sameBits(b.labels, ry)) << i;
    }
  }
}

TEST(BatchLoader, AugmentationIsKeyedByEpochAndIndexOnly) {
  Dataset d = synthetic(10);
  Tensor a, b, y;
  fillBatch(d, {3, 4}, 0, a, y);
  fillBatch(d, {3}, 0, b, y);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), b.bytes()), 0);  // position in batch does not matter
  fillBatch(d, {3}, 1, b, y);
  EXPECT_NE(std::memcmp(a.raw(), b.raw(), b.bytes()), 0);  // another epoch, another crop
}

TEST(BatchLoader, FinitePlanEndsAndEvalIsNotAugmented) {
  Dataset d = synthetic(10);
  d.augment = false;
  int64_t start = 0;
  BatchLoader loader(d, [&](std::vector<int64_t>& idx, int64_t& epoch) {
    if (start >= 10) return false;
    idx.clear();
    for (int64_t i = start; i < std::min<int64_t>(start + 4, 10); ++i) idx.push_back(i);
    start += 4;
    epoch = 0;
    return true;
  }, {2, 3});
  Batch b;
  int64_t seen = 0;
  while (loader.next(b)) {
    for (size_t k = 0; k < b.indices.size(); ++k) {
      // pixel 0 of sample i is i: (i / 255 - 0.5) / 0.25
      const float want = (static_cast<float>(b.indices[k]) * (1.0f / 255.0f) - 0.5f) / 0.25f;
      EXPECT_EQ(b.images.f32()[k * 4], want);
    }
    seen += static_cast<int64_t>(b.indices.size());
  }
  EXPECT_EQ(seen, 10);
  EXPECT_FALSE(loader.next(b));
}

TEST(BatchLoader, WorkerErrorsResurfaceInOrder) {
  Dataset d = synthetic(10, /*bad=*/5);
  BatchLoader loader(d, samplerPlan(ShardedSampler(10, 2, 1, 0, 1, false)), {2, 4});
  Batch b;
  ASSERT_TRUE(loader.next(b));  // samples 0, 1
  ASSERT_TRUE(loader.next(b));  // 2, 3
  try {
    loader.next(b);  // 4, 5: 5 is broken
    FAIL() << "expected BadSampleError";
  } catch (const BadSampleError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 5"), std::string::npos) << e.what();
  }
}

TEST(BatchLoader, SkipBadImagesReplacesAndCounts) {
  Dataset d = synthetic(10, /*bad=*/5);
  d.skip_bad = true;
  Tensor x, y;
  fillBatch(d, {4, 5}, 0, x, y);
  EXPECT_EQ(d.stats->bad_samples.load(), 1);
  // Sample 5 is replaced by sample 6 read with 5's random key; its label is 6's.
  EXPECT_EQ(y.data<int64_t>()[1], 6);
  Tensor x6, y6;
  d.skip_bad = false;
  EXPECT_THROW(fillBatch(d, {5}, 0, x6, y6), BadSampleError);
}

TEST(BatchLoader, DecodeWorkersDefault) {
  Dataset d = synthetic(10);
  EXPECT_EQ(decodeWorkers(d, 3), 3);
  EXPECT_EQ(decodeWorkers(d, 0), 1);  // cheap source: one worker
}

}  // namespace
}  // namespace slim::data
