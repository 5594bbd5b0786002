// torchvision classifiers exported by PyTorch (tests/e2e/torchvision_parity.py:
// random weights, opset 13, dynamic batch) must reproduce PyTorch's outputs
// within 1e-4 relative (max |a-b| / max |b|). Generates the models itself when
// /usr/bin/python3 has torch, torchvision and onnx (about a minute).
#include <gtest/gtest.h>

#include "onnx_test_util.h"
#include "trainer/models/onnx/onnx_import.h"

namespace slim::test {
namespace {

// Folder with the exported models, generated on first use; "" if impossible.
std::string parityDir(std::string* why) {
  if (const char* env = std::getenv("SLIM_TORCHVISION_DIR")) {
    if (fs::exists(fs::path(env) / "DONE")) return env;
    *why = std::string("SLIM_TORCHVISION_DIR=") + env + " has no DONE marker";
    return "";
  }
  fs::path dir = fs::path(SLIM_TEST_BINARY_DIR) / "torchvision_parity";
  if (fs::exists(dir / "DONE")) return dir.string();
  if (runCommand("/usr/bin/python3 -c 'import torch, torchvision, onnx' >/dev/null 2>&1") != 0) {
    *why = "/usr/bin/python3 lacks torch/torchvision/onnx and no exported models exist";
    return "";
  }
  std::string script = std::string(SLIM_TEST_SOURCE_DIR) + "/tests/e2e/torchvision_parity.py";
  fs::path log = fs::path(SLIM_TEST_BINARY_DIR) / "torchvision_parity.log";
  if (runCommand("/usr/bin/python3 '" + script + "' '" + dir.string() + "' >'" + log.string() +
                 "' 2>&1") != 0) {
    *why = "torchvision_parity.py failed, see " + log.string();
    return "";
  }
  return dir.string();
}

class TorchvisionParity : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionParity, MatchesPytorch) {
  static std::string why;
  static const std::string dir = parityDir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  fs::path case_dir = fs::path(dir) / GetParam();
  graph::Graph g = models::importOnnx((case_dir / "model.onnx").string());
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape[0], -1) << "batch axis should be dynamic";
  fs::path data = case_dir / "test_data_set_0";
  auto got = runGraph(g, loadFeeds(data, g));
  auto want = loadExpected(data);
  ASSERT_EQ(got.size(), want.size());
  double err = relMaxError(got[0], want[0]);
  std::cout << "[ parity ] " << GetParam() << ": max|a-b|/max|b| = " << err << "\n";
  EXPECT_LE(err, 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionParity,
                         ::testing::Values("mobilenet_v2", "mobilenet_v3_small", "resnet18",
                                           "squeezenet1_1"));

}  // namespace
}  // namespace slim::test
