// GMP ratio schedule (act-reference §3.4/§3.5): the worked example entry by
// entry, the table formula, stable phase, resume fast-forward, auto config.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "trainer/compress/prune/gmp_ratio.h"
#include "trainer/core/error.h"

namespace slim::compress {
namespace {

config::GmpSchedule sched(int64_t stable, int64_t pruning, int64_t tuning, int64_t resume,
                          int64_t steps, double initial) {
  config::GmpSchedule s;
  s.stable_iterations = stable;
  s.pruning_iterations = pruning;
  s.tunning_iterations = tuning;
  s.resume_iteration = resume;
  s.pruning_steps = steps;
  s.initial_ratio = initial;
  return s;
}

struct Trace {
  std::vector<double> ratio;     // ratio in force after step() of iteration i
  std::vector<bool> recomputed;  // whether step() of iteration i recomputed masks
};

Trace run(GmpRatio& g, int64_t iters) {
  Trace t;
  for (int64_t i = 0; i < iters; ++i) {
    t.recomputed.push_back(g.step());
    t.ratio.push_back(g.ratio());
  }
  return t;
}

// act-reference §3.4 worked example: target 0.75, initial 0.15,
// pruning = tuning = 4500, steps 100, stable 0, resume -1.
TEST(GmpRatio, WorkedExampleEntryByEntry) {
  GmpRatio g(sched(0, 4500, 4500, -1, 100, 0.15), 0.75);
  EXPECT_EQ(g.period(), 45);
  ASSERT_EQ(g.table().size(), 200u);
  const Trace t = run(g, 10000);
  // | iteration | cur | ratio | recomputed |
  EXPECT_EQ(t.ratio[0], 0.0);
  EXPECT_FALSE(t.recomputed[0]);
  EXPECT_EQ(t.ratio[1], 0.15);
  EXPECT_TRUE(t.recomputed[1]);
  EXPECT_NEAR(t.ratio[46], 0.16782, 5e-6);
  EXPECT_TRUE(t.recomputed[46]);
  EXPECT_NEAR(t.ratio[91], 0.18528, 5e-6);
  EXPECT_TRUE(t.recomputed[91]);
  EXPECT_NEAR(t.ratio[4456], 0.7499994, 5e-8);
  EXPECT_LT(t.ratio[4456], 0.75);
  EXPECT_TRUE(t.recomputed[4456]);
  EXPECT_EQ(t.ratio[4501], 0.75);
  EXPECT_TRUE(t.recomputed[4501]);
  for (int64_t i = 4546; i < 10000; ++i) {
    ASSERT_EQ(t.ratio[i], 0.75) << "iteration " << i;
    ASSERT_FALSE(t.recomputed[i]) << "iteration " << i;
  }
  // Between entry boundaries nothing is recomputed and the ratio holds.
  int recomputes = 0;
  for (int64_t i = 0; i < 10000; ++i) {
    const bool boundary = i >= 1 && (i - 1) % 45 == 0;
    if (!boundary) {
      ASSERT_FALSE(t.recomputed[i]) << "iteration " << i;
      if (i > 0) {
        ASSERT_EQ(t.ratio[i], t.ratio[i - 1]) << "iteration " << i;
      }
    }
    recomputes += t.recomputed[i];
  }
  EXPECT_EQ(recomputes, 101);  // 100 pruning entries + the first tuning entry
  EXPECT_EQ(g.state().cur_iteration, 10000 - 1);
}

TEST(GmpRatio, TableMatchesCubicFormula) {
  GmpRatio g(sched(0, 4500, 4500, -1, 100, 0.15), 0.75);
  const auto& tab = g.table();
  for (int i = 0; i < 100; ++i) {
    const double x = 1.0 - i / 100.0;
    EXPECT_NEAR(tab[i], 0.15 + 0.6 * (1.0 - x * x * x), 1e-12) << i;
    if (i > 0) {
      EXPECT_GT(tab[i], tab[i - 1]) << i;
    }
  }
  for (int i = 100; i < 200; ++i) EXPECT_EQ(tab[i], 0.75) << i;
}

TEST(GmpRatio, RatioAtAgreesWithStepping) {
  GmpRatio g(sched(900, 4500, 2250, -1, 100, 0.2), 0.6);
  EXPECT_EQ(g.table().size(), 20u + 100u + 50u);
  for (int64_t cur = -1; cur < 9000; ++cur) {
    ASSERT_EQ(g.state().cur_iteration, cur);
    g.step();
    ASSERT_EQ(g.ratio(), g.ratioAt(cur)) << "cur " << cur;
  }
}

TEST(GmpRatio, StablePhaseZerosDoNotTriggerRecompute) {
  // int(900 / 4500 * 100) = 20 stable entries of 0.0, each one period long.
  GmpRatio g(sched(900, 4500, 4500, -1, 100, 0.15), 0.75);
  const Trace t = run(g, 1000);
  for (int64_t i = 0; i <= 900; ++i) {
    ASSERT_EQ(t.ratio[i], 0.0) << i;
    ASSERT_FALSE(t.recomputed[i]) << i;
  }
  EXPECT_EQ(t.ratio[901], 0.15);  // cur 900 = 20 periods: first pruning entry
  EXPECT_TRUE(t.recomputed[901]);
}

TEST(GmpRatio, ResumeZeroStartsAtFirstStep) {
  GmpRatio g(sched(0, 450, 450, 0, 10, 0.15), 0.75);
  EXPECT_TRUE(g.step());
  EXPECT_EQ(g.ratio(), 0.15);
}

TEST(GmpRatio, ResumeFastForwardsAndPrunesOnce) {
  // P = 45; i in 0..99 with i % 45 == 0: 0, 45, 90 -> three entries consumed.
  GmpRatio fresh(sched(0, 4500, 4500, 0, 100, 0.15), 0.75);
  GmpRatio g(sched(0, 4500, 4500, 100, 100, 0.15), 0.75);
  for (int i = 0; i < 100; ++i) fresh.step();
  EXPECT_EQ(g.state().cur_iteration, 100);
  EXPECT_EQ(g.state().table_index, 3);
  EXPECT_EQ(g.ratio(), g.table()[2]);
  EXPECT_EQ(g.ratio(), fresh.ratio());
  EXPECT_EQ(g.state().table_index, fresh.state().table_index);
  EXPECT_TRUE(g.state().prune_once);
  EXPECT_TRUE(g.step());  // cur 100: not a boundary, ratio unchanged, prune once
  EXPECT_EQ(g.ratio(), g.table()[2]);
  for (int64_t cur = 101; cur < 135; ++cur) EXPECT_FALSE(g.step()) << cur;
  EXPECT_TRUE(g.step());  // cur 135 = 3 periods
  EXPECT_EQ(g.ratio(), g.table()[3]);
  // Beyond the table: the last entry, then target.
  GmpRatio late(sched(0, 4500, 0, 20000, 100, 0.15), 0.75);
  EXPECT_EQ(late.ratio(), late.table().back());
  EXPECT_LT(late.ratio(), 0.75);
  EXPECT_TRUE(late.step());  // prune once at the resumed ratio
  EXPECT_EQ(late.ratio(), late.table().back());
  for (int64_t cur = 20001; cur < 20025; ++cur) EXPECT_FALSE(late.step()) << cur;
  EXPECT_TRUE(late.step());  // cur 20025 = 445 periods: table exhausted -> target
  EXPECT_EQ(late.ratio(), 0.75);
}

TEST(GmpRatio, AutoConfigForSeveralRunLengths) {
  config::UnstructurePrune p;
  p.prune_strategy = "gmp";
  p.ratio = 0.75;
  {  // 0.45 * 10000 = 4500 > 1000: 100 steps of 45 iterations, 100 tuning entries.
    const config::GmpSchedule s = config::resolveGmp(p, 10000);
    EXPECT_EQ(s, sched(0, 4500, 4500, -1, 100, 0.15));
    GmpRatio g(s, p.ratio);
    EXPECT_EQ(g.period(), 45);
    EXPECT_EQ(g.table().size(), 200u);
  }
  {  // 0.45 * 100 = 45: one step; 0.15 for one period then the target.
    const config::GmpSchedule s = config::resolveGmp(p, 100);
    EXPECT_EQ(s, sched(0, 45, 45, -1, 1, 0.15));
    GmpRatio g(s, p.ratio);
    EXPECT_EQ(g.table(), (std::vector<double>{0.15, 0.75}));
    const Trace t = run(g, 100);
    EXPECT_EQ(t.ratio[0], 0.0);
    EXPECT_EQ(t.ratio[1], 0.15);
    EXPECT_EQ(t.ratio[45], 0.15);
    EXPECT_EQ(t.ratio[46], 0.75);
    EXPECT_TRUE(t.recomputed[46]);
    for (int i = 47; i < 100; ++i) EXPECT_FALSE(t.recomputed[i]) << i;
  }
  {  // 0.45 * 20 = 9 -> max(9, 30) = 30 iterations.
    const config::GmpSchedule s = config::resolveGmp(p, 20);
    EXPECT_EQ(s, sched(0, 30, 30, -1, 1, 0.15));
    EXPECT_EQ(GmpRatio(s, p.ratio).period(), 30);
  }
  {  // 0.45 * 2000 = 900 <= 1000: still a single step.
    const config::GmpSchedule s = config::resolveGmp(p, 2000);
    EXPECT_EQ(s, sched(0, 900, 900, -1, 1, 0.15));
    EXPECT_EQ(GmpRatio(s, p.ratio).period(), 900);
  }
}

TEST(GmpRatio, BadSchedulesAndStatesRejected) {
  EXPECT_THROW(GmpRatio(sched(0, 5, 5, -1, 10, 0.1), 0.5), ConfigError);  // P = 0
  EXPECT_THROW(GmpRatio(sched(0, 500, 5, -1, 0, 0.1), 0.5), ConfigError);
  EXPECT_THROW(GmpRatio(sched(0, 500, 5, -2, 10, 0.1), 0.5), ConfigError);
  config::UnstructurePrune p;
  p.prune_strategy = "gmp";
  p.gmp_config = config::GmpConfig{};
  p.gmp_config->pruning_iterations = 100;
  p.gmp_config->pruning_steps = 10;  // 100 / 10 = 10, not > 10
  EXPECT_THROW(config::resolveGmp(p, 1000), ConfigError);
  GmpRatio g(sched(0, 450, 450, -1, 10, 0.1), 0.5);
  PrunerState s = g.state();
  s.table_index = 21;
  EXPECT_THROW(g.setState(s), CheckpointError);
  s.table_index = 20;
  g.setState(s);
  EXPECT_EQ(g.state(), s);
}

}  // namespace
}  // namespace slim::compress
