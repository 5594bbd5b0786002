// LR schedules at boundaries, T_max, warm-up end; cosine vs Paddle's
// recursive form; factory errors.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "trainer/core/error.h"
#include "trainer/optim/lr_schedule.h"

namespace slim::optim {
namespace {

TEST(LrSchedule, ConstantAndPiecewise) {
  EXPECT_FLOAT_EQ(makeLrSchedule(LrSpec{})->lr(12345), 0.02f);
  LrSpec s;
  s.type = "PiecewiseDecay";
  s.boundaries = {100, 200};
  s.values = {0.1, 0.01, 0.001};
  auto p = makeLrSchedule(s);
  EXPECT_FLOAT_EQ(p->lr(0), 0.1f);
  EXPECT_FLOAT_EQ(p->lr(99), 0.1f);
  EXPECT_FLOAT_EQ(p->lr(100), 0.01f);
  EXPECT_FLOAT_EQ(p->lr(199), 0.01f);
  EXPECT_FLOAT_EQ(p->lr(200), 0.001f);
  EXPECT_FLOAT_EQ(p->lr(1000000), 0.001f);
  s.values.pop_back();
  EXPECT_THROW(makeLrSchedule(s), ConfigError);
  s.values = {1, 2, 3};
  s.boundaries = {200, 100};
  EXPECT_THROW(makeLrSchedule(s), ConfigError);
}

TEST(LrSchedule, CosineClosedFormMatchesPaddleRecursion) {
  LrSpec s;
  s.type = "CosineAnnealingDecay";
  s.learning_rate = 0.1;
  s.T_max = 100;
  s.eta_min = 0.001;
  auto c = makeLrSchedule(s);
  EXPECT_FLOAT_EQ(c->lr(0), 0.1f);
  EXPECT_FLOAT_EQ(c->lr(50), 0.0505f);
  EXPECT_FLOAT_EQ(c->lr(100), 0.001f);
  EXPECT_FLOAT_EQ(c->lr(150), 0.0505f);  // rises again past T_max
  EXPECT_FLOAT_EQ(c->lr(200), 0.1f);
  // Paddle's CosineAnnealingDecay.get_lr, stepped once per iteration.
  const double base = 0.1, eta = 0.001, T = 100, pi = std::numbers::pi;
  double last = base;
  for (int e = 1; e <= 450; ++e) {
    double lr;
    if ((e - 1 - 100) % 200 == 0)
      lr = last + (base - eta) * (1 - std::cos(pi / T)) / 2;
    else
      lr = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (last - eta) + eta;
    ASSERT_NEAR(c->lr(e), lr, 1e-7) << "step " << e;
    last = lr;
  }
  s.T_max = 0;
  EXPECT_THROW(makeLrSchedule(s), ConfigError);
}

TEST(LrSchedule, LinearWarmupThenInner) {
  LrSpec s;
  s.type = "LinearWarmup";
  s.warmup_steps = 10;
  s.start_lr = 0.0;
  s.end_lr = 0.1;
  s.learning_rate = 0.05;  // float LR after warm-up
  auto w = makeLrSchedule(s);
  EXPECT_FLOAT_EQ(w->lr(0), 0.0f);
  EXPECT_FLOAT_EQ(w->lr(5), 0.05f);
  EXPECT_FLOAT_EQ(w->lr(9), 0.09f);
  EXPECT_FLOAT_EQ(w->lr(10), 0.05f);
  EXPECT_FLOAT_EQ(w->lr(500), 0.05f);
  // Inner cosine schedule starts at its own step 0 when warm-up ends.
  auto inner = std::make_shared<LrSpec>();
  inner->type = "CosineAnnealingDecay";
  inner->learning_rate = 0.1;
  inner->T_max = 100;
  s.inner = inner;
  auto wc = makeLrSchedule(s);
  auto c = makeLrSchedule(*inner);
  EXPECT_FLOAT_EQ(wc->lr(9), 0.09f);
  EXPECT_FLOAT_EQ(wc->lr(10), 0.1f);
  EXPECT_FLOAT_EQ(wc->lr(60), c->lr(50));
  EXPECT_FLOAT_EQ(wc->lr(110), 0.0f);
  s.warmup_steps = 0;
  EXPECT_THROW(makeLrSchedule(s), ConfigError);
}

TEST(LrSchedule, ExponentialAndUnknown) {
  LrSpec s;
  s.type = "ExponentialDecay";
  s.learning_rate = 0.1;
  s.gamma = 0.9;
  auto e = makeLrSchedule(s);
  EXPECT_FLOAT_EQ(e->lr(0), 0.1f);
  EXPECT_FLOAT_EQ(e->lr(2), 0.081f);
  EXPECT_FLOAT_EQ(e->lr(10), static_cast<float>(0.1 * std::pow(0.9, 10)));
  s.type = "CyclicLR";
  try {
    makeLrSchedule(s);
    FAIL();
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("CyclicLR"), std::string::npos);
  }
}

}  // namespace
}  // namespace slim::optim
