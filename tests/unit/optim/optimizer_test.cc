// Optimizers against closed-form results of 2-3 steps, coupled vs decoupled
// weight decay, bit-exact state round trips, and gradient clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "trainer/optim/grad_clip.h"
#include "trainer/optim/optimizer.h"

namespace slim::optim {
namespace {

std::unique_ptr<Optimizer> make(const std::string& type,
                                std::optional<float> wd = std::nullopt) {
  OptimizerSpec s;
  s.type = type;
  s.weight_decay = wd;
  return makeOptimizer(s);
}

// Applies steps with gradients grads[k] to a one-element parameter p0.
float run1(Optimizer& opt, float p0, const std::vector<float>& grads, float lr) {
  Tensor p = Tensor::fromVector({1}, {p0});
  for (float g : grads) {
    Tensor gt = Tensor::fromVector({1}, {g});
    opt.step({{"w", &p, &gt}}, lr);
  }
  return p.f32()[0];
}

TEST(Optimizer, SgdAndCoupledDecay) {
  EXPECT_FLOAT_EQ(run1(*make("SGD"), 1.0f, {0.5f, 0.25f}, 0.1f), 1.0f - 0.05f - 0.025f);
  // L2: g' = g + 0.1 p.  p1 = 1 - 0.1 (0.5 + 0.1) = 0.94;
  // p2 = 0.94 - 0.1 (0.25 + 0.094) = 0.9056.
  EXPECT_FLOAT_EQ(run1(*make("SGD", 0.1f), 1.0f, {0.5f, 0.25f}, 0.1f), 0.9056f);
  OptimizerSpec l1;
  l1.l1_decay = 0.2f;  // g' = g + 0.2 sign(p): p1 = -1 - 0.1 (0.5 - 0.2) = -1.03
  EXPECT_FLOAT_EQ(run1(*makeOptimizer(l1), -1.0f, {0.5f}, 0.1f), -1.03f);
}

TEST(Optimizer, MomentumPlainAndNesterov) {
  const float mu = 0.9f, lr = 0.1f, g1 = 1.0f, g2 = -0.5f, g3 = 2.0f;
  // v1 = g1, v2 = mu g1 + g2, v3 = mu v2 + g3; p -= lr v each step.
  const float v2 = mu * g1 + g2, v3 = mu * v2 + g3;
  EXPECT_NEAR(run1(*make("Momentum"), 0.0f, {g1, g2, g3}, lr),
              -lr * (g1 + v2 + v3), 1e-6);
  OptimizerSpec s;
  s.type = "Momentum";
  s.use_nesterov = true;
  // Nesterov: p -= lr (g + mu v).
  EXPECT_NEAR(run1(*makeOptimizer(s), 0.0f, {g1, g2}, lr),
              -lr * (g1 + mu * g1) - lr * (g2 + mu * v2), 1e-6);
}

TEST(Optimizer, AdamBiasCorrected) {
  // Constant gradient: m_hat = g, v_hat = g^2, so each step moves lr g/(|g|+eps).
  OptimizerSpec s;
  s.type = "Adam";
  s.epsilon = 0.1f;  // large enough to matter
  EXPECT_NEAR(run1(*makeOptimizer(s), 1.0f, {0.5f, 0.5f, 0.5f}, 0.01f),
              1.0 - 3 * 0.01 * 0.5 / 0.6, 1e-6);
  // Two different gradients with the defaults (b1 0.9, b2 0.999, eps 1e-8).
  const double g1 = 1.0, g2 = -0.5, lr = 0.01;
  const double m2 = 0.09 * g1 + 0.1 * g2, v2 = 0.000999 * g1 * g1 + 0.001 * g2 * g2;
  const double step2 = lr * (m2 / 0.19) / (std::sqrt(v2 / (1 - 0.999 * 0.999)) + 1e-8);
  EXPECT_NEAR(run1(*make("Adam"), 1.0f, {1.0f, -0.5f}, 0.01f), 1.0 - lr - step2, 1e-6);
}

TEST(Optimizer, AdamWDecouplesWeightDecay) {
  const double lr = 0.1, p0 = 2.0;  // g = 0.5
  // AdamW default coeff 0.01: p *= 1 - lr coeff, then the Adam step lr*g/|g|.
  EXPECT_NEAR(run1(*make("AdamW"), 2.0f, {0.5f}, 0.1f), p0 - lr * 0.01 * p0 - lr, 1e-6);
  EXPECT_NEAR(run1(*make("AdamW", 0.5f), 2.0f, {0.5f}, 0.1f), p0 - lr * 0.5 * p0 - lr, 1e-6);
  // Adam with the same weight_decay couples it: g' = g + 0.5 p = 1.5 and the
  // first Adam step is lr * sign(g') — decay changes only the direction.
  EXPECT_NEAR(run1(*make("Adam", 0.5f), 2.0f, {0.5f}, 0.1f), p0 - lr, 1e-6);
  EXPECT_NEAR(run1(*make("Adam", 0.5f), 2.0f, {-0.5f}, 0.1f), p0 - lr, 1e-6);
  EXPECT_NEAR(run1(*make("Adam"), 2.0f, {-0.5f}, 0.1f), p0 + lr, 1e-6);
  EXPECT_EQ(make("AdamW")->type(), "AdamW");
  EXPECT_EQ(make("Adam")->type(), "Adam");
}

// Runs `steps` steps over two parameters with pseudo-random gradients.
void runSteps(Optimizer& opt, std::vector<Tensor>& params, int first, int steps) {
  for (int k = first; k < first + steps; ++k) {
    std::vector<Tensor> grads;
    std::vector<ParamRef> refs;
    for (size_t j = 0; j < params.size(); ++j) {
      Tensor g(params[j].shape());
      for (int64_t i = 0; i < g.numel(); ++i)
        g.f32()[i] = std::sin(0.7f * k + 1.3f * i + j);
      grads.push_back(g);
    }
    for (size_t j = 0; j < params.size(); ++j) {
      std::string name = "p";
      name += std::to_string(j);
      refs.push_back({name, &params[j], &grads[j]});
    }
    opt.step(refs, 0.01f);
  }
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

TEST(Optimizer, StateRoundTripContinuesBitIdentically) {
  for (const char* type : {"SGD", "Momentum", "Adam", "AdamW"}) {
    SCOPED_TRACE(type);
    auto a = make(type, 0.01f);
    std::vector<Tensor> pa = {Tensor::fromVector({2, 3}, {1, 2, 3, 4, 5, 6}),
                              Tensor::fromVector({4}, {-1, 0.5f, 0, 2})};
    runSteps(*a, pa, 0, 3);
    std::map<std::string, Tensor> snap;
    for (auto& [k, t] : a->state()) snap[k] = t.clone();
    std::vector<Tensor> pb = {pa[0].clone(), pa[1].clone()};
    runSteps(*a, pa, 3, 4);

    auto b = make(type, 0.01f);
    b->loadState(snap);
    EXPECT_EQ(b->stepCount(), 3);
    runSteps(*b, pb, 3, 4);
    EXPECT_EQ(b->stepCount(), 7);
    for (size_t j = 0; j < pa.size(); ++j) EXPECT_TRUE(sameBits(pa[j], pb[j]));
    auto sa = a->state(), sb = b->state();
    ASSERT_EQ(sa.size(), sb.size());
    for (auto& [k, t] : sa) EXPECT_TRUE(sameBits(t, sb.at(k))) << k;
  }
}

TEST(Optimizer, LoadStateValidates) {
  auto adam = make("Adam");
  std::vector<Tensor> p = {Tensor::fromVector({3}, {1, 2, 3})};
  runSteps(*adam, p, 0, 1);
  auto st = adam->state();
  EXPECT_EQ(st.count("p0/moment1"), 1u);
  EXPECT_EQ(st.count("p0/beta1_pow"), 1u);
  EXPECT_FLOAT_EQ(st.at("p0/beta1_pow").f32()[0], 0.9f * 0.9f);
  // Momentum cannot load Adam's slots.
  EXPECT_THROW(make("Momentum")->loadState(st), CheckpointError);
  auto no_step = st;
  no_step.erase("step");
  EXPECT_THROW(make("Adam")->loadState(no_step), CheckpointError);
  // A moment of the wrong size is caught at the next step.
  auto bad = st;
  bad["p0/moment1"] = Tensor({5});
  auto b = make("Adam");
  b->loadState(bad);
  EXPECT_THROW(runSteps(*b, p, 1, 1), ShapeError);
  Tensor g({4});
  EXPECT_THROW(make("SGD")->step("w", p[0], g, 0.1f), ShapeError);
  OptimizerSpec unknown;
  unknown.type = "Lamb";
  EXPECT_THROW(makeOptimizer(unknown), ConfigError);
}

TEST(GradClip, GlobalNormScalesAllTensorsTogether) {
  Tensor a = Tensor::fromVector({2}, {3, 4}), b = Tensor::fromVector({1}, {12});
  std::vector<Tensor*> grads = {&a, &b};
  EXPECT_FLOAT_EQ(clipGradByGlobalNorm(grads, 6.5f), 13.0f);
  EXPECT_FLOAT_EQ(a.f32()[0], 1.5f);
  EXPECT_FLOAT_EQ(a.f32()[1], 2.0f);
  EXPECT_FLOAT_EQ(b.f32()[0], 6.0f);
  // Below the threshold nothing changes.
  EXPECT_FLOAT_EQ(clipGradByGlobalNorm(grads, 100.0f), 6.5f);
  EXPECT_FLOAT_EQ(b.f32()[0], 6.0f);
  EXPECT_THROW(clipGradByGlobalNorm(grads, 0.0f), ConfigError);
}

TEST(GradClip, PerTensorNormAndValue) {
  Tensor a = Tensor::fromVector({2}, {3, 4}), b = Tensor::fromVector({1}, {0.5f});
  std::vector<Tensor*> grads = {&a, &b};
  clipGradByNorm(grads, 1.0f);
  EXPECT_FLOAT_EQ(a.f32()[0], 0.6f);
  EXPECT_FLOAT_EQ(a.f32()[1], 0.8f);
  EXPECT_FLOAT_EQ(b.f32()[0], 0.5f);
  clipGradByValue(grads, -0.1f, 0.7f);
  EXPECT_FLOAT_EQ(a.f32()[0], 0.6f);
  EXPECT_FLOAT_EQ(a.f32()[1], 0.7f);
  EXPECT_THROW(clipGradByValue(grads, 1.0f, 0.0f), ConfigError);
}

}  // namespace
}  // namespace slim::optim
