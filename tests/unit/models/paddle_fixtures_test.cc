// The real Paddle models in ../shared/fixtures/paddle: every program parses,
// paddlelite_simple_model runs and matches conv + batch_norm + relu computed
// here with naive loops from its own weights, the custom op is rejected.
#include <algorithm>
#include <filesystem>

#include "tests/unit/models/paddle_test_util.h"
#include "trainer/models/paddle/paddle_program.h"

namespace slim::test {
namespace {

std::string fixtures() {
  return std::string(SLIM_TEST_SOURCE_DIR) + "/../shared/fixtures/paddle";
}

#define SLIM_NEED_FIXTURES()                                                    \
  if (!std::filesystem::exists(fixtures()))                                     \
  GTEST_SKIP() << "Paddle fixtures folder " << fixtures() << " is absent"

bool hasOp(const models::PaddleProgramInfo& p, const std::string& t) {
  auto types = p.opTypes();
  return std::find(types.begin(), types.end(), t) != types.end();
}

TEST(PaddleFixtures, EveryProgramParses) {
  SLIM_NEED_FIXTURES();
  struct F { const char* path; std::vector<std::string> ops; };
  std::vector<F> all = {
      {"paddlelite_simple_model/model.pdmodel", {"feed", "conv2d", "batch_norm", "relu", "fetch"}},
      {"paddle_inference_demo_custom_gap/custom_gap.pdmodel",
       {"gap", "matmul_v2", "flatten_contiguous_range", "reshape2", "scale"}},
      {"paddlelite_mobilenet_v1_fp32_224_program_only/__model__",
       {"conv2d", "depthwise_conv2d", "batch_norm", "pool2d", "mul", "softmax"}},
      {"paddleslim_qat_mobilenet_v1_int8_program_only/int8_infer.pdmodel",
       {"conv2d", "pool2d", "matmul", "flatten_contiguous_range"}},
      {"paddlelite_resnet50_int8_qat_program_only/__model__",
       {"fake_quantize_moving_average_abs_max", "fake_quantize_dequantize_moving_average_abs_max",
        "fake_dequantize_max_abs", "conv2d", "elementwise_add"}},
  };
  for (const auto& f : all) {
    auto p = models::parsePaddleProgram(fixtures() + "/" + f.path);
    EXPECT_GE(p.num_blocks, 1) << f.path;
    for (const auto& t : f.ops) EXPECT_TRUE(hasOp(p, t)) << f.path << " lacks op " << t;
    // Every op's variables are declared in block 0.
    for (const auto& op : p.ops)
      for (const auto& [slot, names] : op.outputs)
        for (const auto& n : names) EXPECT_NE(p.var(n), nullptr) << f.path << ": " << n;
  }
}

TEST(PaddleFixtures, QatProgramsKeepQuantAttributes) {
  SLIM_NEED_FIXTURES();
  auto p = models::parsePaddleProgram(fixtures() +
                                      "/paddlelite_resnet50_int8_qat_program_only/__model__");
  int with_bits = 0;
  for (const auto& op : p.ops)
    if (op.type.rfind("fake_quantize", 0) == 0 &&
        std::count(op.attr_names.begin(), op.attr_names.end(), "bit_length"))
      ++with_bits;
  EXPECT_GT(with_bits, 0);
  // *.scale state vars are persistable and part of the params list.
  EXPECT_TRUE(std::any_of(p.param_names.begin(), p.param_names.end(), [](const std::string& n) {
    return n.find(".scale") != std::string::npos;
  }));
  // Running them is not supported: the error names the fake-quant op.
  models::PaddleImportOptions opts;
  opts.program_only = true;
  try {
    models::importPaddle(fixtures() + "/paddlelite_resnet50_int8_qat_program_only/__model__", "",
                         opts);
    FAIL() << "fake_quantize ops accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("fake_"), std::string::npos) << e.what();
  }
}

TEST(PaddleFixtures, CustomGapIsRejectedByName) {
  SLIM_NEED_FIXTURES();
  try {
    models::importPaddleDir(fixtures() + "/paddle_inference_demo_custom_gap", "custom_gap.pdmodel",
                            "custom_gap.pdiparams");
    FAIL() << "custom op accepted";
  } catch (const ModelError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'gap'"), std::string::npos) << m;
    EXPECT_NE(m.find("_generated_var_0"), std::string::npos) << m;
    EXPECT_NE(m.find("op #"), std::string::npos) << m;
  }
}

TEST(PaddleFixtures, SimpleModelMatchesNaiveConvBnRelu) {
  SLIM_NEED_FIXTURES();
  const std::string dir = fixtures() + "/paddlelite_simple_model";
  auto info = models::parsePaddleProgram(dir + "/model.pdmodel");
  EXPECT_EQ(info.param_names, (std::vector<std::string>{"conv1_bn_mean", "conv1_bn_offset",
                                                        "conv1_bn_scale", "conv1_bn_variance",
                                                        "conv1_weights"}));
  auto g = models::importPaddleDir(dir, "model.pdmodel", "model.pdiparams");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].name, "image");
  EXPECT_EQ(shapeStr(g.inputs[0].shape), "[-1, 3, 224, 224]");
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].name, "batch_norm_0.tmp_3");
  const Tensor& w = g.initializers.at("conv1_weights");
  const Tensor& mean = g.initializers.at("conv1_bn_mean");
  const Tensor& var = g.initializers.at("conv1_bn_variance");
  const Tensor& scale = g.initializers.at("conv1_bn_scale");
  const Tensor& shift = g.initializers.at("conv1_bn_offset");
  for (int64_t c = 0; c < 32; ++c) ASSERT_GT(var.f32()[c], 0.f) << "variance record";
  SLIM_SKIP_IF_NO_KERNELS(g);
  // Reference: 3x3 stride-2 pad-1 conv, BN (eps 1e-5), relu, naive loops.
  const int64_t H = 224, OH = 112;
  Tensor x = randomTensor({1, 3, H, H}, 42);
  Tensor want({1, 32, OH, OH});
  for (int64_t m = 0; m < 32; ++m) {
    const float inv = 1.f / std::sqrt(var.f32()[m] + 1e-5f);
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OH; ++ow) {
        double acc = 0;
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j) {
              int64_t h = oh * 2 - 1 + i, ww = ow * 2 - 1 + j;
              if (h < 0 || h >= H || ww < 0 || ww >= H) continue;
              acc += x.f32()[(c * H + h) * H + ww] * w.f32()[((m * 3 + c) * 3 + i) * 3 + j];
            }
        float y = scale.f32()[m] * (static_cast<float>(acc) - mean.f32()[m]) * inv + shift.f32()[m];
        want.f32()[(m * OH + oh) * OH + ow] = std::max(y, 0.f);
      }
  }
  expectClose(runForward(g, {{"image", x}}).at("batch_norm_0.tmp_3"), want, 1e-4f, "simple model");
}

TEST(PaddleFixtures, MobileNetProgramOnlyRunsToUniformSoftmax) {
  SLIM_NEED_FIXTURES();
  models::PaddleImportOptions opts;
  opts.program_only = true;
  auto g = models::importPaddle(
      fixtures() + "/paddlelite_mobilenet_v1_fp32_224_program_only/__model__", "", opts);
  ASSERT_EQ(g.outputs.size(), 1u);
  int convs = 0;
  for (const auto& n : g.nodes) convs += n.op_type == "Conv";
  EXPECT_EQ(convs, 27);
  SLIM_SKIP_IF_NO_KERNELS(g);
  // All weights zero, BN scale/variance one: logits are 0, softmax uniform.
  auto out = runForward(g, {{g.inputs[0].name, randomTensor({1, 3, 224, 224}, 7)}});
  const Tensor& y = out.at(g.outputs[0].name);
  ASSERT_EQ(shapeStr(y.shape()), "[1, 1000]");
  for (int64_t k = 0; k < 1000; ++k) ASSERT_NEAR(y.f32()[k], 1e-3f, 1e-6f);
}

}  // namespace
}  // namespace slim::test
