// Pruner: masks through a simulated training loop (GMP and fixed ratio),
// weight and gradient masking, sparse_model freezing, mask hashing,
// checkpoint round trip and resume_iteration fast-forward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tests/unit/compress/prune_test_util.h"
#include "trainer/compress/prune/pruner.h"
#include "trainer/core/error.h"

namespace slim::compress {
namespace {

using test::maskZeros;

config::UnstructurePrune gmpCfg(bool local, int64_t resume = -1) {
  config::UnstructurePrune c;
  c.prune_strategy = "gmp";
  c.prune_params_type = "";
  c.ratio = 0.6;
  c.local_sparsity = local;
  c.gmp_config = config::GmpConfig{};
  c.gmp_config->stable_iterations = 0;
  c.gmp_config->pruning_iterations = 110;  // P = 11
  c.gmp_config->tunning_iterations = 110;
  c.gmp_config->pruning_steps = 10;
  c.gmp_config->initial_ratio = 0.1;
  c.gmp_config->resume_iteration = resume;
  return c;
}

// A deterministic "optimizer step": every weight moves by a small amount that
// depends on the iteration and index, and may cross zero.
void fakeOptimizerStep(graph::Graph& g, int64_t iter) {
  for (auto& [name, t] : g.initializers) {
    if (!g.trainable.count(name) || t.dtype() != DType::kF32) continue;
    float* w = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i)
      w[i] += 0.02f * std::sin(0.37f * static_cast<float>(i) + 0.11f * static_cast<float>(iter));
  }
}

// One training iteration in the trainer's order.
bool trainIter(graph::Graph& g, Pruner& p, int64_t iter) {
  p.applyToWeights();
  fakeOptimizerStep(g, iter);
  return p.step();
}

int64_t floorN(double r, int64_t n) { return static_cast<int64_t>(std::floor(r * n)); }

TEST(Pruner, GmpLocalReachesExactCountsAtEveryRecompute) {
  graph::Graph g = test::smallNet();
  Pruner p(g, gmpCfg(/*local=*/true), 300);
  EXPECT_EQ(p.candidates().size(), 6u);
  EXPECT_EQ(p.sparsity(), 0.0);
  int recomputes = 0;
  for (int64_t it = 0; it < 300; ++it) {
    const bool rc = trainIter(g, p, it);
    recomputes += rc;
    EXPECT_EQ(p.ratio(), p.schedule()->ratioAt(it - 1));
    if (!rc) continue;
    for (const std::string& n : p.candidates())
      ASSERT_GE(maskZeros(p.mask(n)), floorN(p.ratio(), p.mask(n).numel())) << n << " " << it;
  }
  EXPECT_EQ(recomputes, 11);  // 10 pruning entries + the first tuning entry
  EXPECT_DOUBLE_EQ(p.ratio(), 0.6);
  for (const auto& [n, s] : p.paramSparsity())
    EXPECT_EQ(maskZeros(p.mask(n)), floorN(0.6, p.mask(n).numel())) << n;
}

TEST(Pruner, GlobalModeCountsOverAllCandidates) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune c;
  c.prune_params_type = "";
  c.ratio = 0.55;
  Pruner p(g, c, 10);
  EXPECT_FALSE(p.isGmp());
  EXPECT_EQ(p.ratio(), 0.0);  // the first iteration runs dense
  EXPECT_TRUE(p.step());
  EXPECT_EQ(p.ratio(), 0.55);
  int64_t zeros = 0, total = 0;
  for (const auto& [n, m] : p.masks()) zeros += maskZeros(m), total += m.numel();
  EXPECT_EQ(zeros, floorN(0.55, total));
  EXPECT_DOUBLE_EQ(p.sparsity(), static_cast<double>(zeros) / total);
}

TEST(Pruner, ApplyToWeightsReZerosAndGradientsAreMasked) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune c;  // conv1x1_only, ratio 0.55
  c.local_sparsity = true;
  Pruner p(g, c, 10);
  p.step();
  p.applyToWeights();
  Tensor& w = g.initializers.at("pw.weight");
  const Tensor before = w.clone();
  fakeOptimizerStep(g, 0);  // pruned weights become non-zero again
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] += 0.5f;
  p.applyToWeights();
  const uint8_t* m = p.mask("pw.weight").data<uint8_t>();
  int64_t zeros = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    if (m[i] == 0) {
      ASSERT_EQ(w.f32()[i], 0.0f) << i;
      ++zeros;
    } else {
      ASSERT_NE(w.f32()[i], before.f32()[i]) << i;
    }
  }
  EXPECT_EQ(zeros, floorN(0.55, w.numel()));

  Tensor gpw(w.shape()), gdw1(g.initializers.at("dw1.weight").shape()), gfc({10, 16});
  gpw.fill(1), gdw1.fill(1), gfc.fill(1);
  std::map<std::string, Tensor*> grads{{"pw.weight", &gpw}, {"fc.weight", &gfc}};
  p.maskGradients(grads);
  for (int64_t i = 0; i < gpw.numel(); ++i) ASSERT_EQ(gpw.f32()[i], m[i] ? 1.0f : 0.0f);
  for (int64_t i = 0; i < gfc.numel(); ++i) ASSERT_EQ(gfc.f32()[i], 1.0f);  // not a candidate
  p.maskGradients([&](const std::string& n) { return n == "dw1.weight" ? &gdw1 : nullptr; });
  EXPECT_EQ(maskZeros(p.mask("dw1.weight")), floorN(0.55, 16));
  for (int64_t i = 0; i < 16; ++i)
    EXPECT_EQ(gdw1.f32()[i], p.mask("dw1.weight").data<uint8_t>()[i] ? 1.0f : 0.0f);
  Tensor bad({3});
  EXPECT_THROW(p.maskGradient("pw.weight", bad), ShapeError);
}

TEST(Pruner, SparseModelFreezesTheExistingZeroPattern) {
  graph::Graph g = test::smallNet();
  float* pw = g.initializers.at("pw.weight").f32();
  for (int64_t i = 0; i < 128; i += 3) pw[i] = 0.0f;  // 43 zeros of 128
  g.initializers.at("fc.weight").f32()[0] = 0.0f;       // not conv1x1: ignored
  Pruner p = Pruner::sparseModel(g);
  EXPECT_EQ(p.candidates(), (std::vector<std::string>{"dw1.weight", "pw.weight"}));
  EXPECT_EQ(maskZeros(p.mask("pw.weight")), 43);
  EXPECT_EQ(maskZeros(p.mask("dw1.weight")), 0);
  const Tensor frozen = p.mask("pw.weight").clone();
  const uint64_t h = p.maskHash();
  for (int64_t it = 0; it < 20; ++it) EXPECT_FALSE(trainIter(g, p, it));
  EXPECT_EQ(p.maskHash(), h);
  p.applyToWeights();
  for (int64_t i = 0; i < 128; ++i) {
    EXPECT_EQ(p.mask("pw.weight").data<uint8_t>()[i], frozen.data<uint8_t>()[i]);
    EXPECT_EQ(pw[i] == 0.0f, i % 3 == 0) << i;  // zeros re-applied, others moved
  }
  EXPECT_EQ(p.state().cur_iteration, 20);
}

TEST(Pruner, MaskHashIsStableAndSeesOneBit) {
  graph::Graph g1 = test::smallNet(), g2 = test::smallNet();
  Pruner a(g1, gmpCfg(false, 0), 300), b(g2, gmpCfg(false, 0), 300);
  const uint64_t dense = a.maskHash();
  EXPECT_EQ(dense, b.maskHash());
  for (int64_t it = 0; it < 30; ++it) {
    trainIter(g1, a, it);
    trainIter(g2, b, it);
    ASSERT_EQ(a.maskHash(), b.maskHash()) << it;
  }
  EXPECT_NE(a.maskHash(), dense);
  const std::vector<uint64_t> per = a.maskHashes();
  auto masks = a.masks();  // shallow: shares storage with the pruner
  uint8_t* bit = masks.at("mm.weight").data<uint8_t>() + 17;
  *bit ^= 1;
  EXPECT_NE(a.maskHash(), b.maskHash());
  const std::vector<uint64_t> changed = a.maskHashes();
  for (size_t i = 0; i < per.size(); ++i)
    EXPECT_EQ(per[i] != changed[i], a.candidates()[i] == "mm.weight") << a.candidates()[i];
  *bit ^= 1;
  EXPECT_EQ(a.maskHash(), b.maskHash());
}

TEST(Pruner, SaveRestoreContinuesBitIdentically) {
  for (bool local : {true, false}) {
    graph::Graph ga = test::smallNet();
    Pruner a(ga, gmpCfg(local), 300);
    PrunerState saved;
    std::map<std::string, Tensor> saved_masks;
    graph::Graph gb;
    for (int64_t it = 0; it < 57; ++it) trainIter(ga, a, it);
    // "Checkpoint": weights, scalar state and masks (deep copies).
    gb = ga.clone();
    saved = a.state();
    for (const auto& [n, m] : a.masks()) saved_masks[n] = m.clone();
    // A fresh pruner on the restored graph, then the same iterations on both.
    Pruner b(gb, gmpCfg(local), 300);
    b.loadState(saved, saved_masks);
    EXPECT_EQ(b.state(), a.state());
    EXPECT_EQ(b.maskHash(), a.maskHash());
    for (int64_t it = 57; it < 260; ++it) {
      ASSERT_EQ(trainIter(ga, a, it), trainIter(gb, b, it)) << it;
      ASSERT_EQ(a.maskHash(), b.maskHash()) << it;
      ASSERT_EQ(a.state(), b.state()) << it;
    }
    for (const std::string& n : a.candidates())
      EXPECT_EQ(0, std::memcmp(a.mask(n).raw(), b.mask(n).raw(), a.mask(n).bytes())) << n;
  }
}

TEST(Pruner, LoadStateRejectsMismatchedMasks) {
  graph::Graph g = test::smallNet();
  Pruner p(g, gmpCfg(true), 300);
  auto masks = p.masks();
  masks.erase("pw.weight");
  EXPECT_THROW(p.loadState(p.state(), masks), CheckpointError);
  masks = p.masks();
  masks["pw.weight"] = Tensor({16, 8}, DType::kU8);
  EXPECT_THROW(p.loadState(p.state(), masks), CheckpointError);
  masks = p.masks();
  masks["extra.weight"] = Tensor({2, 2}, DType::kU8);
  EXPECT_THROW(p.loadState(p.state(), masks), CheckpointError);
  masks = p.masks();
  Tensor two = masks.at("fc.weight").clone();
  two.data<uint8_t>()[3] = 2;
  masks["fc.weight"] = two;
  EXPECT_THROW(p.loadState(p.state(), masks), CheckpointError);
}

TEST(Pruner, ResumeIterationFastForwards) {
  // resume 40 with P = 11: entries at 0, 11, 22, 33 consumed -> table[3].
  graph::Graph g = test::smallNet();
  Pruner p(g, gmpCfg(true, 40), 300);
  EXPECT_EQ(p.state().cur_iteration, 40);
  EXPECT_TRUE(p.state().prune_once);
  const double r = p.schedule()->table()[3];
  EXPECT_EQ(p.ratio(), r);
  EXPECT_EQ(p.sparsity(), 0.0);
  EXPECT_TRUE(p.step());  // prune once at the resumed ratio
  for (const std::string& n : p.candidates())
    EXPECT_EQ(maskZeros(p.mask(n)), floorN(r, p.mask(n).numel())) << n;
  EXPECT_FALSE(p.step());  // cur 41: no change
  EXPECT_EQ(p.state().cur_iteration, 42);
}

TEST(Pruner, ThresholdModeAndConfigErrors) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune c;
  c.prune_params_type = "";
  c.prune_mode = "threshold";
  c.threshold = 0.25;
  Pruner p(g, c, 10);
  EXPECT_TRUE(p.step());
  for (const std::string& n : p.candidates()) {
    const Tensor& w = g.initializers.at(n);
    for (int64_t i = 0; i < w.numel(); ++i)
      ASSERT_EQ(p.mask(n).data<uint8_t>()[i], std::fabs(w.f32()[i]) < 0.25f ? 0 : 1) << n;
  }
  c.local_sparsity = true;
  EXPECT_THROW(Pruner(g, c, 10), ConfigError);
  c = config::UnstructurePrune{};
  c.prune_strategy = "l1";
  EXPECT_THROW(Pruner(g, c, 10), ConfigError);
  c = config::UnstructurePrune{};
  c.ratio = 1.0;
  EXPECT_THROW(Pruner(g, c, 10), ConfigError);
}

}  // namespace
}  // namespace slim::compress
