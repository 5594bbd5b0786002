// Positive parsing tests: shipped configs, legacy vs newer spellings, defaults,
// --set overrides, node forms, optimizers, GMP resolution, op-type mapping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "trainer/config/config.h"
#include "trainer/core/error.h"

using namespace slim::config;

namespace {

const std::string kRoot = SLIM_TEST_SOURCE_DIR;
const std::string kBase = R"(
Global:
  model: zoo:mobilenet_tiny
  batch_size: 16
  Data: {train_images: a.gz, train_labels: b.gz}
TrainConfig:
  epochs: 1
)";

Config parse(const std::string& extra, const std::vector<std::string>& sets = {}) {
  return parseConfigString(kBase + extra, "test.yaml", sets);
}

TEST(ConfigParse, PretrainConfig) {
  const Config c = loadConfig(kRoot + "/configs/fmnist_pretrain.yaml");
  EXPECT_EQ(c.global.model, "zoo:mobilenet_tiny");
  EXPECT_EQ(c.global.batch_size, 64);
  EXPECT_EQ(c.global.eval_batch_size, 64);
  EXPECT_EQ(c.global.data.mean, std::vector<double>{0.2860});
  EXPECT_EQ(c.global.data.std_dev, std::vector<double>{0.3530});
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.learning_rate.type, "CosineAnnealingDecay");
  EXPECT_EQ(c.train.learning_rate.T_max, 2814);
  EXPECT_DOUBLE_EQ(c.train.learning_rate.learning_rate, 0.1);
  EXPECT_EQ(c.train.optimizer.type, "Momentum");
  EXPECT_DOUBLE_EQ(c.train.optimizer.weight_decay, 5e-4);
  EXPECT_EQ(c.checkpoint.dir, "./output/pretrain/checkpoints");
  EXPECT_FALSE(c.quant || c.distill || c.prune);
}

TEST(ConfigParse, ActConfig) {
  const Config c = loadConfig(kRoot + "/configs/fmnist_act.yaml");
  ASSERT_TRUE(c.quant && c.distill && c.prune);
  EXPECT_TRUE(c.quant->use_pact);
  EXPECT_EQ(c.quant->activation_quantize_type, "range_abs_max");
  EXPECT_EQ(c.quant->quantize_op_types, (std::vector<std::string>{"conv2d", "depthwise_conv2d", "mul"}));
  ASSERT_EQ(c.distill->groups.size(), 1u);
  const auto& g = c.distill->groups[0];
  EXPECT_EQ(g.loss, "l2");
  ASSERT_EQ(g.pairs.size(), 2u);
  EXPECT_EQ(g.pairs[1], (DistillPair{"teacher_logits", "logits"}));
  EXPECT_DOUBLE_EQ(c.prune->ratio, 0.75);
  EXPECT_EQ(c.prune->prune_strategy, "gmp");
  EXPECT_TRUE(c.prune->local_sparsity);
  const GmpSchedule s = resolveGmp(*c.prune, 2 * 938);
  EXPECT_EQ(s.pruning_iterations, 938);
  EXPECT_EQ(s.pruning_steps, 50);
  EXPECT_EQ(s.resume_iteration, -1);
  EXPECT_EQ(c.train.learning_rate.type, "CosineAnnealingDecay");
  EXPECT_DOUBLE_EQ(c.train.learning_rate.learning_rate, 0.02);
  EXPECT_EQ(c.train.optimizer.type, "Momentum");
  EXPECT_DOUBLE_EQ(c.train.optimizer.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.train.optimizer.weight_decay, 5e-4);
}

TEST(ConfigParse, LegacyAndNewSpellingsGiveEqualStructs) {
  const Config legacy = parse(R"(
  optimizer: Momentum
  optim_args: {weight_decay: 0.0001, momentum: 0.8, grad_clip: ClipGradByGlobalNorm, grad_clip_args: {clip_norm: 2}}
Quantization: {weight_bits: 4}
Distillation:
  distill_loss: soft_label_loss
  distill_node_pair: [teacher_x, x]
  distill_lambda: 2
  merge_feed: true
UnstructurePrune: {pruned_ratio: 0.5}
)");
  const Config modern = parse(R"(
  optimizer_builder:
    optimizer: {type: Momentum, momentum: 0.8}
    weight_decay: 1.0e-4
    grad_clip: {type: ClipGradByGlobalNorm, clip_norm: 2.0}
QuantAware: {weight_bits: 4}
Distillation: {loss: soft_label, node: [x], alpha: 2.0}
UnstructurePrune: {ratio: 0.5}
)");
  EXPECT_EQ(legacy, modern);
  EXPECT_DOUBLE_EQ(modern.train.optimizer.grad_clip_norm, 2.0);
  EXPECT_EQ(modern.distill->groups[0].pairs[0], (DistillPair{"teacher_x", "x"}));
}

TEST(ConfigParse, Defaults) {
  const Config c = parse("QuantAware:\nDistillation:\nUnstructurePrune:\n");
  EXPECT_EQ(c.global.eval_batch_size, 16);
  EXPECT_EQ(c.global.seed, 1);
  EXPECT_TRUE(c.global.data.shuffle);
  EXPECT_EQ(c.checkpoint.dir, "./output/checkpoints");
  EXPECT_EQ(c.checkpoint.resume, "auto");
  EXPECT_EQ(c.distributed.backend, "auto");
  ASSERT_TRUE(c.quant && c.distill && c.prune);
  EXPECT_EQ(*c.quant, QuantAware{});
  EXPECT_EQ(c.quant->quantize_op_types.size(), 6u);
  EXPECT_EQ(c.quant->activation_quantize_type, "moving_average_abs_max");
  EXPECT_TRUE(c.distill->autoNodes());
  EXPECT_EQ(c.distill->groups[0].loss, "l2");
  EXPECT_DOUBLE_EQ(c.prune->ratio, 0.55);
  EXPECT_EQ(c.prune->prune_params_type, "conv1x1_only");
  EXPECT_FALSE(c.prune->gmp_config.has_value());
  EXPECT_EQ(c.train.eval_iter, 1000);
  EXPECT_EQ(c.train.logging_iter, 10);
  EXPECT_DOUBLE_EQ(c.train.learning_rate.learning_rate, 0.02);
  EXPECT_EQ(c.train.optimizer.type, "SGD");
  EXPECT_EQ(c.train.optimizer.weight_decay, 0.0);
}

TEST(ConfigParse, SetOverrides) {
  const Config c = parse("Quantization: {weight_bits: 8}\nDistillation: {distill_lambda: 1.0}\n",
                         {"TrainConfig.epochs=2", "Global.Data.mean=[0.5]", "Global.Data.std=[0.25]",
                          "QuantAware.weight_bits=4", "Distillation.alpha=0.5",
                          "Checkpoint.every_iters=10", "UnstructurePrune.gmp_config.pruning_steps=5",
                          "TrainConfig.learning_rate={type: ExponentialDecay, learning_rate: 0.1, gamma: 0.9}"});
  EXPECT_EQ(c.train.epochs, 2);
  EXPECT_EQ(c.global.data.mean, std::vector<double>{0.5});
  EXPECT_EQ(c.quant->weight_bits, 4);  // written into the Quantization section
  EXPECT_DOUBLE_EQ(c.distill->groups[0].alpha, 0.5);
  EXPECT_EQ(c.checkpoint.every_iters, 10);
  ASSERT_TRUE(c.prune && c.prune->gmp_config);
  EXPECT_EQ(c.prune->gmp_config->pruning_steps, 5);
  EXPECT_EQ(c.train.learning_rate.type, "ExponentialDecay");
  EXPECT_DOUBLE_EQ(c.train.learning_rate.gamma, 0.9);
}

TEST(ConfigParse, ErrorNamesLineAndColumn) {
  try {
    parse("  eval_iter: x\n");
    FAIL();
  } catch (const slim::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("test.yaml: line 8, column 14: TrainConfig.eval_iter: "
                                         "expected an integer, found 'x'"),
              std::string::npos) << e.what();
  }
}

TEST(ConfigParse, DistillNodeForms) {
  const Config nested = parse(R"(
Distillation:
  node: [[teacher_t1, s1, teacher_t2, s2], [c]]
  loss: [l2, soft_label]
  alpha: [1, 0.5]
  temperature: 4
  task_loss: cross_entropy
  task_loss_weight: 0.3
)");
  const auto& d = *nested.distill;
  ASSERT_EQ(d.groups.size(), 2u);
  EXPECT_EQ(d.groups[0].pairs, (std::vector<DistillPair>{{"teacher_t1", "s1"}, {"teacher_t2", "s2"}}));
  EXPECT_EQ(d.groups[1].pairs, (std::vector<DistillPair>{{"teacher_c", "c"}}));
  EXPECT_EQ(d.groups[1].loss, "soft_label");
  EXPECT_DOUBLE_EQ(d.groups[0].alpha, 1.0);
  EXPECT_DOUBLE_EQ(d.groups[1].alpha, 0.5);
  EXPECT_DOUBLE_EQ(d.temperature, 4.0);
  EXPECT_EQ(d.task_loss, "cross_entropy");
  EXPECT_DOUBLE_EQ(d.task_loss_weight, 0.3);
  // A scalar loss and weight apply to every group.
  const Config bcast = parse("Distillation: {node: [[a], [b]], loss: soft_label, alpha: 3}\n");
  EXPECT_EQ(bcast.distill->groups[1].loss, "soft_label");
  EXPECT_DOUBLE_EQ(bcast.distill->groups[1].alpha, 3.0);
}

TEST(ConfigParse, Optimizers) {
  const Config adamw = parse("  optimizer_builder: {optimizer: {type: AdamW, beta2: 0.99}}\n");
  EXPECT_DOUBLE_EQ(adamw.train.optimizer.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(adamw.train.optimizer.beta2, 0.99);
  const Config reg = parse(
      "  optimizer_builder:\n    optimizer: {type: Adam}\n    regularizer: {type: L2Decay, coeff: 0.003}\n");
  EXPECT_DOUBLE_EQ(reg.train.optimizer.weight_decay, 0.003);
  const Config warm = parse(R"(
  train_iter: 50
  learning_rate:
    type: LinearWarmup
    learning_rate: {type: PiecewiseDecay, boundaries: [10, 20], values: [0.1, 0.01, 0.001]}
    warmup_steps: 5
    start_lr: 0
    end_lr: 0.1
)");
  const LrSchedule& lr = warm.train.learning_rate;
  EXPECT_EQ(lr.type, "LinearWarmup");
  ASSERT_EQ(lr.after_warmup.size(), 1u);
  EXPECT_EQ(lr.after_warmup[0].values.size(), 3u);
  EXPECT_EQ(warm.train.train_iter, 50);
}

TEST(ConfigParse, AcceptedAndIgnoredKeys) {
  const Config c = parse(R"(
  use_fleet: yes
  sparse_model: on
UnstructurePrune: {prune_strategy: None, prune_params_type: null}
)");
  EXPECT_TRUE(c.train.sparse_model);
  EXPECT_EQ(c.prune->prune_strategy, "");
  EXPECT_EQ(c.prune->prune_params_type, "");
}

TEST(ConfigParse, ResolveGmpAutoAndExplicit) {
  UnstructurePrune p;
  p.ratio = 0.75;
  p.prune_strategy = "gmp";
  GmpSchedule big = resolveGmp(p, 10000);  // 0.45·T = 4500 > 1000
  EXPECT_EQ(big.pruning_iterations, 4500);
  EXPECT_EQ(big.tunning_iterations, 4500);
  EXPECT_EQ(big.pruning_steps, 100);
  EXPECT_EQ(big.resume_iteration, -1);
  EXPECT_DOUBLE_EQ(big.initial_ratio, 0.15);
  EXPECT_EQ(resolveGmp(p, 100).pruning_iterations, 45);
  EXPECT_EQ(resolveGmp(p, 100).pruning_steps, 1);
  EXPECT_EQ(resolveGmp(p, 20).pruning_iterations, 30);
  p.gmp_config = GmpConfig{};
  p.gmp_config->pruning_steps = 10;
  EXPECT_THROW(resolveGmp(p, 100), slim::ConfigError);  // 45 / 10 <= 10
  EXPECT_EQ(resolveGmp(p, 1000).pruning_steps, 10);     // 450 / 10 > 10
  EXPECT_THROW(resolveGmp(UnstructurePrune{}, 0), slim::ConfigError);
}

TEST(ConfigParse, QuantTargets) {
  QuantAware q;
  q.quantize_op_types = {"conv2d", "mul"};
  EXPECT_EQ(quantTargets(q), (QuantTargets{true, false, false, true, true, false, false, false}));
  q.quantize_op_types = {"Conv", "MatMul"};
  EXPECT_EQ(quantTargets(q), (QuantTargets{true, true, false, false, true, true, false, false}));
  q.quantize_op_types = {"depthwise_conv2d", "elementwise_add"};
  EXPECT_EQ(quantTargets(q), (QuantTargets{false, true, false, false, false, false, true, false}));
  q.quantize_op_types = {"Add", "GlobalAveragePool"};
  EXPECT_EQ(quantTargets(q), (QuantTargets{false, false, false, false, false, false, true, true}));
  q.quantize_op_types = {"pool2d"};
  EXPECT_EQ(quantTargets(q), (QuantTargets{false, false, false, false, false, false, false, true}));
  q.for_tensorrt = true;
  EXPECT_EQ(quantTargets(q), (QuantTargets{true, true, false, true, true, false, true, true}));
  q.is_full_quantize = true;
  EXPECT_EQ(quantTargets(q), (QuantTargets{true, true, true, true, true, true, true, true}));
  // Paddle's matmul ops multiply two activations too (attention), its mul never.
  q = QuantAware{};
  for (const char* t : {"matmul", "matmul_v2"}) {
    q.quantize_op_types = {t};
    EXPECT_EQ(quantTargets(q), (QuantTargets{false, false, false, true, true, true, false, false}));
  }
}

TEST(ConfigParse, OddDocumentsFailWithConfigError) {
  for (const char* doc : {"", "hello", "[1, 2]", "Global: [1]", "? [a]\n: b\n",
                          "Global: &a {x: 1}\nTrainConfig: *a\n", "Global:\n  Data: 3\n",
                          "TrainConfig: {epochs: 1, learning_rate: {type: [x]}}\n"}) {
    try {
      parseConfigString(doc, "odd.yaml");
      ADD_FAILURE() << "accepted: " << doc;
    } catch (const slim::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("odd.yaml"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a ConfigError for '" << doc << "': " << e.what();
    }
  }
}

// The ConfigError message of `f()`, or "" (with a test failure) if it passes.
template <class F>
std::string errorOf(F&& f) {
  try {
    f();
    ADD_FAILURE() << "accepted";
  } catch (const slim::ConfigError& e) {
    EXPECT_EQ(slim::exitCodeFor(e), slim::kExitUsage);
    return e.what();
  }
  return "";
}

TEST(ConfigParse, SecondDocumentNamedByItsLine) {
  // Line 8 is the second "---" (kBase starts with an empty line).
  std::string msg = errorOf([] { parse("---\nTrainConfig: {epochs: 3}\n"); });
  EXPECT_NE(msg.find("test.yaml: line 8, column 1: a second YAML document starts here"),
            std::string::npos) << msg;
  // A leading "---" is the first document's own marker; a trailing empty
  // document still counts (as in PyYAML, which ACT uses).
  msg = errorOf([] { parseConfigString("---\n" + kBase + "---\n", "t.yaml"); });
  EXPECT_NE(msg.find("t.yaml: line 9, column 1: a second YAML document"), std::string::npos) << msg;
  EXPECT_NO_THROW(parseConfigString("---\n" + kBase, "t.yaml"));
  EXPECT_NO_THROW(parseConfigString("---\n" + kBase + "...\n", "t.yaml"));
}

TEST(ConfigParse, DirectoryIsNamed) {
  const std::string dir = ::testing::TempDir();
  const std::string msg = errorOf([&] { loadConfig(dir); });
  EXPECT_NE(msg.find(dir + ": is a directory"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("empty"), std::string::npos) << msg;
}

TEST(ConfigParse, EmptySetValueNamesTheOption) {
  for (const char* set : {"TrainConfig.epochs=", "Global.batch_size= ", "Checkpoint.keep_last=\t"}) {
    const std::string msg = errorOf([&] { parse("", {set}); });
    EXPECT_NE(msg.find("test.yaml: --set '" + std::string(set) + "': empty value"),
              std::string::npos) << msg;
    EXPECT_EQ(msg.find("line"), std::string::npos) << msg;
  }
  // null stays the explicit way to unset an optional key.
  EXPECT_NO_THROW(parse("  train_iter: 5\n", {"TrainConfig.epochs=null"}));
}

TEST(ConfigParse, IntegerBoundsNameKeyRangeAndValue) {
  std::string msg = errorOf([] { parse("  train_iter: 1000000001\n"); });
  EXPECT_NE(msg.find("line 8, column 15: TrainConfig.train_iter: expected an integer in "
                     "[1, 1000000000], found 1000000001"),
            std::string::npos) << msg;
  // num_threads: bounded by this machine's cores in loadConfig only.
  EXPECT_EQ(parseConfigString(
                "Global: {model: zoo:m, batch_size: 1, num_threads: 4096, Data: {train_images: a, "
                "train_labels: b}}\nTrainConfig: {epochs: 1}\n", "ckpt.yaml")
                .global.num_threads, 4096);
  msg = errorOf([] { parse("", {"Global.num_threads=100000"}); });
  EXPECT_NE(msg.find("Global.num_threads: expected an integer in [0, 65536] (0 = automatic), "
                     "found 100000"), std::string::npos) << msg;
  // Bounds are inclusive.
  const Config c = parse("  train_iter: 1000000000\nCheckpoint: {every_iters: 0, keep_last: 1000}\n"
                         "QuantAware: {weight_bits: 2, activation_bits: 16, window_size: 8388607}\n");
  EXPECT_EQ(c.train.train_iter, kMaxIterations);
  EXPECT_EQ(c.checkpoint.every_iters, 0);
  EXPECT_EQ(c.checkpoint.keep_last, kMaxKeepLast);
  EXPECT_EQ(c.quant->window_size, kMaxWindowSize);
}

TEST(ConfigParse, EpochsAndTrainIterBothKept) {
  // Both are kept: the run stops at whichever comes first (ACT's loop).
  const Config c = parse("  train_iter: 30\n");
  EXPECT_EQ(c.train.epochs, 1);
  EXPECT_EQ(c.train.train_iter, 30);
}

TEST(ConfigParse, MissingFile) {
  EXPECT_THROW(loadConfig("/nonexistent/x.yaml"), slim::ConfigError);
}

// `slimtrain eval` reads Global only: TrainConfig may be missing there.
TEST(ConfigParse, EvalNeedsNoTrainConfig) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slim_eval_only_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream f(path);
    f << "Global:\n  model: zoo:mobilenet_tiny\n  batch_size: 8\n"
         "  Data: {train_images: a.gz, train_labels: b.gz}\n";
  }
  EXPECT_THROW(loadConfig(path.string()), slim::ConfigError);
  const Config c = loadConfig(path.string(), {}, /*train_optional=*/true);
  EXPECT_EQ(c.global.batch_size, 8);
  std::filesystem::remove(path);
}

}  // namespace
