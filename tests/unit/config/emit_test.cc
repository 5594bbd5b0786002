// resolvedYaml round trips and trajectoryDiff.
#include <gtest/gtest.h>

#include "trainer/config/config.h"

using namespace slim::config;

namespace {

const std::string kRoot = SLIM_TEST_SOURCE_DIR;

const char* kEverything = R"(
Global:
  model_dir: ./m
  model_filename: model.pdmodel
  params_filename: model.pdiparams
  batch_size: 32
  eval_batch_size: 100
  seed: 7
  Data: {format: hdf5, train_images: t.h5, eval_images: e.h5, mean: [0.1, 0.2, 0.3], std: [1, 2, 3], shuffle: false}
Checkpoint: {every_iters: 0, keep_last: 1, resume: never}
Distributed: {backend: local, bucket_mb: 0.5, timeout_s: 2.5}
QuantAware: {quantize_op_types: Conv, not_quant_pattern: skip, moving_rate: 0.3, onnx_format: false, weight_bits: 4, signed_input_weight_bits: 3}
Distillation:
  node: [[teacher_a, b], [c, d]]
  loss: [soft_label, l2]
  alpha: [0.30000000000000004, 2]
  teacher_model_dir: ./t
  teacher_params_filename: None
  task_loss: cross_entropy
UnstructurePrune:
  prune_strategy: gmp
  prune_params_type: ~
  gmp_config: {pruning_iterations: 400, initial_ratio: 0.1}
TrainConfig:
  train_iter: 1000
  origin_metric: 0.9
  learning_rate:
    type: LinearWarmup
    learning_rate: {type: CosineAnnealingDecay, learning_rate: 0.1, T_max: 1000, eta_min: 1.0e-5}
    warmup_steps: 10
    start_lr: 0
    end_lr: 0.1
  optimizer_builder:
    optimizer: {type: AdamW, epsilon: 1.0e-6}
    grad_clip: {type: ClipGradByGlobalNorm, clip_norm: 5}
)";

void expectRoundTrip(const Config& c) {
  const std::string y = resolvedYaml(c);
  const Config back = parseConfigString(y, "resolved.yaml");
  EXPECT_EQ(back, c) << y;
  EXPECT_EQ(resolvedYaml(back), y);
}

TEST(ConfigEmit, RoundTripShippedConfigs) {
  expectRoundTrip(loadConfig(kRoot + "/configs/fmnist_pretrain.yaml"));
  expectRoundTrip(loadConfig(kRoot + "/configs/fmnist_act.yaml"));
}

TEST(ConfigEmit, RoundTripEverything) {
  const Config c = parseConfigString(kEverything, "all.yaml");
  EXPECT_EQ(c.distill->groups[0].alpha, 0.30000000000000004);
  expectRoundTrip(c);
  const std::string y = resolvedYaml(c);
  EXPECT_NE(y.find("QuantAware"), std::string::npos);
  EXPECT_NE(y.find("optimizer_builder"), std::string::npos);
}

// ACT's data_dir form resolves to a list-format Data section with ACT's
// reader; it and an ImageFolder section with every image key round-trip.
TEST(ConfigEmit, RoundTripImageData) {
  const Config act = parseConfigString(R"(
Global:
  model_dir: ./MobileNetV3_large_x1_0_infer
  model_filename: inference.pdmodel
  params_filename: inference.pdiparams
  input_name: inputs
  batch_size: 32
  data_dir: /ILSVRC2012
  img_size: 192
TrainConfig: {epochs: 1}
)", "act.yaml");
  const Data& d = act.global.data;
  EXPECT_EQ(d.format, "list");
  EXPECT_EQ(d.train_images, "/ILSVRC2012/train_list.txt");
  EXPECT_EQ(d.eval_images, "/ILSVRC2012/val_list.txt");
  EXPECT_EQ(d.root, "/ILSVRC2012");
  EXPECT_EQ(d.transform, "act");
  EXPECT_EQ(d.interpolation, "lanczos");
  EXPECT_EQ(d.img_size, 192);
  EXPECT_EQ(d.resize_size, 256);
  EXPECT_EQ(d.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(act.global.input_name, "inputs");
  expectRoundTrip(act);
  const Config folder = parseConfigString(R"(
Global:
  model: zoo:mobilenet_tiny
  batch_size: 8
  Data:
    format: imagefolder
    train_images: ./train
    eval_images: ./val
    pixel_range: 255
    interpolation: bicubic
    scale: [0.25, 1]
    ratio: [0.5, 2]
    random_flip: false
    channel_order: bgr
    max_image_pixels: 1000000
    jpeg_dct_scaling: "off"
    skip_bad_images: true
    decode_workers: 3
    prefetch_batches: 4
TrainConfig: {epochs: 1}
)", "folder.yaml");
  EXPECT_EQ(folder.global.data.transform, "torchvision");
  EXPECT_EQ(folder.global.data.mean[0], 0.485 * 255);
  expectRoundTrip(folder);
  // Decoding settings never change the trajectory; the crop does.
  Config other = folder;
  other.global.data.decode_workers = 1;
  other.global.data.skip_bad_images = false;
  EXPECT_TRUE(trajectoryDiff(folder, other).empty());
  other.global.data.scale = {0.08, 1};
  EXPECT_EQ(trajectoryDiff(folder, other).size(), 1u);
}

TEST(ConfigEmit, RoundTripPartialGmpAndAutoNodes) {
  const Config c = parseConfigString(std::string(kEverything) +
                                         "", "all.yaml",
                                     {"Distillation.node=[]", "Distillation.loss=l2", "Distillation.alpha=1",
                                      "UnstructurePrune.gmp_config={}"});
  EXPECT_TRUE(c.distill->autoNodes());
  ASSERT_TRUE(c.prune->gmp_config.has_value());
  EXPECT_EQ(*c.prune->gmp_config, GmpConfig{});
  expectRoundTrip(c);
}

TEST(ConfigEmit, TrajectoryDiffIgnoresBookkeeping) {
  const Config a = loadConfig(kRoot + "/configs/fmnist_act.yaml");
  const Config b = loadConfig(kRoot + "/configs/fmnist_act.yaml",
                              {"Global.save_dir=/elsewhere", "TrainConfig.logging_iter=1",
                               "Checkpoint.every_iters=7", "Distributed.timeout_s=9",
                               "Global.eval_batch_size=500", "TrainConfig.eval_iter=3"});
  EXPECT_NE(a, b);
  EXPECT_TRUE(trajectoryDiff(a, b).empty());
}

TEST(ConfigEmit, TrajectoryDiffListsChanges) {
  const Config a = loadConfig(kRoot + "/configs/fmnist_act.yaml");
  const Config b = loadConfig(kRoot + "/configs/fmnist_act.yaml",
                              {"TrainConfig.learning_rate.learning_rate=0.01", "Global.seed=2"});
  const auto d = trajectoryDiff(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "Global.seed: 1 -> 2");
  EXPECT_EQ(d[1], "TrainConfig.learning_rate.learning_rate: 0.02 -> 0.01");
  const Config c = loadConfig(kRoot + "/configs/fmnist_pretrain.yaml");
  const auto removed = trajectoryDiff(a, c);
  bool saw = false;
  for (const auto& line : removed) saw = saw || line == "QuantAware.weight_bits: 8 -> <absent>";
  EXPECT_TRUE(saw);
}

}  // namespace
