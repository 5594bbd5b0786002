// ShardedSampler: determinism, N-rank shards vs 1-rank batches (rank-local
// samplers built in one process, STYLE rule 35), resume and re-shard, and
// evalShard coverage.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "trainer/core/error.h"
#include "trainer/data/sampler.h"

namespace slim::data {
namespace {

// Concatenation in rank order of every rank's next() batch.
std::vector<int64_t> concatNext(std::vector<ShardedSampler>& ranks) {
  std::vector<int64_t> all;
  for (auto& s : ranks) {
    auto b = s.next();
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

std::vector<ShardedSampler> makeRanks(int64_t n, int64_t g, int world,
                                      uint64_t seed, bool drop_last = true) {
  std::vector<ShardedSampler> v;
  for (int r = 0; r < world; ++r) v.emplace_back(n, g, world, r, seed, true, drop_last);
  return v;
}

TEST(Sampler, PermutationDependsOnlyOnSeedAndEpoch) {
  ShardedSampler a(1000, 8, 1, 0, 42, true), b(1000, 16, 2, 1, 42, true);
  ShardedSampler c(1000, 8, 1, 0, 43, true);
  auto p0 = a.permutation(0);
  EXPECT_EQ(p0, b.permutation(0));
  EXPECT_NE(p0, a.permutation(1));
  EXPECT_NE(p0, c.permutation(0));
  auto sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_NE(p0, sorted);  // actually shuffled
  ShardedSampler plain(10, 2, 1, 0, 42, false);
  EXPECT_EQ(plain.permutation(3), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // Two samplers with the same arguments give the same stream.
  ShardedSampler x(1000, 8, 1, 0, 7, true), y(1000, 8, 1, 0, 7, true);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(x.next(), y.next());
}

TEST(Sampler, ShardsAreDisjointCompleteAndEqualOneRankBatches) {
  const int64_t n = 1003, local = 5;
  for (int world : {2, 4}) {
    SCOPED_TRACE(world);
    const int64_t g = local * world;
    ShardedSampler one(n, g, 1, 0, 9, true);
    auto ranks = makeRanks(n, g, world, 9);
    EXPECT_EQ(one.batchesPerEpoch(), n / g);
    std::set<int64_t> seen;
    for (int64_t b = 0; b < 2 * one.batchesPerEpoch(); ++b) {
      auto want = one.next();
      auto got = concatNext(ranks);
      ASSERT_EQ(got, want) << "batch " << b;
      for (auto& s : ranks) EXPECT_EQ(s.localBatch(), local);
      if (b < one.batchesPerEpoch()) {
        for (int64_t i : got) EXPECT_TRUE(seen.insert(i).second) << "repeat " << i;
      }
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), one.batchesPerEpoch() * g);
    EXPECT_EQ(one.position(), (SamplerPosition{2, 0}));
  }
}

TEST(Sampler, PartialLastBatchWithoutDropLast) {
  const int64_t n = 23, g = 8;
  ShardedSampler one(n, g, 1, 0, 3, true, false);
  auto ranks = makeRanks(n, g, 4, 3, false);
  EXPECT_EQ(one.batchesPerEpoch(), 3);
  std::set<int64_t> seen;
  for (int b = 0; b < 3; ++b) {
    auto got = concatNext(ranks);
    EXPECT_EQ(got, one.next());
    seen.insert(got.begin(), got.end());
  }
  EXPECT_EQ(seen.size(), 23u);  // every sample once, nothing dropped
  EXPECT_EQ(one.position(), (SamplerPosition{1, 0}));
}

TEST(Sampler, SeekEqualsContinuing) {
  ShardedSampler run(500, 12, 2, 1, 5, true);
  for (int i = 0; i < 50; ++i) run.next();  // crosses into epoch 1 (41/epoch)
  const SamplerPosition pos = run.position();
  EXPECT_EQ(pos, (SamplerPosition{1, 9 * 12}));
  ShardedSampler resumed(500, 12, 2, 1, 5, true);
  resumed.seek(pos.epoch, pos.sample_offset);
  for (int i = 0; i < 60; ++i) ASSERT_EQ(resumed.next(), run.next()) << i;
  EXPECT_EQ(resumed.position(), run.position());
}

TEST(Sampler, ReshardFromTwoRanksToOneAtAnOffset) {
  const int64_t n = 300, g = 10;
  auto two = makeRanks(n, g, 2, 11);
  for (int i = 0; i < 17; ++i) concatNext(two);
  const SamplerPosition pos = two[0].position();
  EXPECT_EQ(pos, two[1].position());
  EXPECT_EQ(pos, (SamplerPosition{0, 170}));
  ShardedSampler one(n, g, 1, 0, 11, true);
  one.seek(pos.epoch, pos.sample_offset);
  for (int i = 0; i < 40; ++i) ASSERT_EQ(one.next(), concatNext(two)) << i;
  // A resume whose offset is not a multiple of the global batch continues
  // from that sample of the same permutation.
  ShardedSampler odd(n, g, 1, 0, 11, true);
  odd.seek(0, 7);
  const auto perm = one.permutation(0);
  EXPECT_EQ(odd.next(), std::vector<int64_t>(perm.begin() + 7, perm.begin() + 17));
}

TEST(Sampler, RejectsBadArguments) {
  EXPECT_THROW(ShardedSampler(0, 4, 1, 0, 1, true), ConfigError);
  EXPECT_THROW(ShardedSampler(100, 6, 4, 0, 1, true), ConfigError);
  EXPECT_THROW(ShardedSampler(100, 8, 4, 4, 1, true), ConfigError);
  EXPECT_THROW(ShardedSampler(10, 16, 1, 0, 1, true), ConfigError);
  ShardedSampler s(100, 4, 1, 0, 1, true);
  EXPECT_THROW(s.seek(0, 101), ConfigError);
  EXPECT_THROW(s.seek(-1, 0), ConfigError);
}

TEST(EvalShard, CoversEverySampleExactlyOnce) {
  for (int64_t n : {0, 1, 7, 10000, 10001}) {
    for (int world = 1; world <= 9; ++world) {
      int64_t expect_begin = 0;
      for (int r = 0; r < world; ++r) {
        IndexRange range = evalShard(n, world, r);
        EXPECT_EQ(range.begin, expect_begin) << n << " " << world << " " << r;
        EXPECT_GE(range.size(), n / world);
        EXPECT_LE(range.size(), n / world + 1);
        expect_begin = range.end;
      }
      EXPECT_EQ(expect_begin, n);
    }
  }
  EXPECT_THROW(evalShard(10, 2, 2), ConfigError);
}

}  // namespace
}  // namespace slim::data
