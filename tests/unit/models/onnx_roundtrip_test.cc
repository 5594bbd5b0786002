// Import -> export -> import must give identical outputs; the exported file
// must pass onnx.checker (full check) and run in ONNX Runtime with the same
// results. Uses the fixtures plus a synthetic graph covering the coerce_2d
// Softmax rewrite and int64 initializers.
#include <gtest/gtest.h>

#include "onnx_test_util.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/models/onnx/onnx_import.h"

namespace slim::test {
namespace {

bool havePythonOnnx() {
  return runCommand("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
}

// Runs ONNX's Python checker with full_check on `model`; "" when it passes.
std::string pythonCheck(const fs::path& model) {
  fs::path log = model.string() + ".check.txt";
  int rc = runCommand("/usr/bin/python3 -c 'import onnx,sys; "
                      "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' '" +
                      model.string() + "' >'" + log.string() + "' 2>&1");
  if (rc == 0) return "";
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  return "checker exit " + std::to_string(rc) + ": " + ss.str();
}

bool haveOrt() {
  return fs::exists(fs::path(SLIM_TEST_SOURCE_DIR) / "node_modules" / "onnxruntime-node") &&
         runCommand("node --version >/dev/null 2>&1") == 0;
}

// Writes feeds as input_<i>.pb (graph input order) and runs scripts/ort_run.js.
std::vector<Tensor> runOrt(const fs::path& model, const graph::Graph& g,
                           const std::map<std::string, Tensor>& feeds, const fs::path& dir) {
  std::string cmd = "node '" + std::string(SLIM_TEST_SOURCE_DIR) + "/scripts/ort_run.js' '" +
                    model.string() + "' '" + dir.string() + "'";
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    fs::path p = dir / ("input_" + std::to_string(i) + ".pb");
    models::writeTensorProto(feeds.at(g.inputs[i].name), p.string(), g.inputs[i].name);
    cmd += " '" + p.string() + "'";
  }
  EXPECT_EQ(runCommand(cmd + " 2>'" + (dir / "ort.log").string() + "'"), 0) << cmd;
  return loadExpected(dir);
}

// The whole round trip for one graph and its feeds.
void roundTrip(graph::Graph& g, const std::map<std::string, Tensor>& feeds,
               const std::string& tag, double ort_tol) {
  auto first = runGraph(g, feeds);
  fs::path dir = scratchDir("roundtrip_" + tag);
  fs::path out = dir / "model.onnx";
  models::exportOnnx(g, out.string());
  graph::Graph g2 = models::importOnnx(out.string());
  EXPECT_EQ(g2.trainable, g.trainable) << tag;
  EXPECT_EQ(g2.buffers, g.buffers) << tag;
  auto second = runGraph(g2, feeds);
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i)
    EXPECT_EQ(compareTensors(second[i], first[i], 1e-6, 0), "") << tag << " output " << i;
  if (havePythonOnnx())
    EXPECT_EQ(pythonCheck(out), "") << tag;
  else
    std::cout << "[ note ] python3-onnx missing: onnx.checker step skipped\n";
  if (!haveOrt()) {
    std::cout << "[ note ] node_modules/onnxruntime-node or node missing: ORT step skipped\n";
    return;
  }
  auto ort = runOrt(out, g, feeds, dir);
  ASSERT_EQ(ort.size(), first.size()) << tag;
  for (size_t i = 0; i < first.size(); ++i)
    EXPECT_LE(relMaxError(ort[i], first[i]), ort_tol) << tag << " output " << i;
}

TEST(OnnxRoundTrip, FixtureModels) {
  std::string root = fixturesDir();
  if (root.empty()) GTEST_SKIP() << "../shared/fixtures missing";
  struct Case { const char* model; const char* data; };
  const Case cases[] = {{"onnx/mnist-8/mnist-8.onnx", "onnx/mnist-8/test_data_set_1"},
                        {"onnx/onnx_mlir_mnist/mnist.onnx", "onnx/onnx_mlir_mnist/test_data_set_0"},
                        {"onnx/burn_mnist_cnn/mnist.onnx", "onnx/mnist-8/test_data_set_2"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.model);
    graph::Graph g = models::importOnnx(root + "/" + c.model);
    auto feeds = loadFeeds(fs::path(root) / c.data, g);
    std::string tag = fs::path(c.model).parent_path().filename().string();
    roundTrip(g, feeds, tag, 1e-5);
  }
}

TEST(OnnxRoundTrip, SyntheticGraphWithCoercedSoftmax) {
  // x [N,3,4] -> Reshape(shape [-1,12]) -> Reshape([-1,3,4]) -> Softmax(axis=1,
  // coerce_2d: softmax over the flattened 3*4 block) -> y; plus Mul by a weight.
  graph::Graph g;
  g.inputs.push_back({"x", {-1, 3, 4}, DType::kF32});
  g.outputs.push_back({"y", {-1, 3, 4}, DType::kF32});
  g.addInitializer("shape_a", Tensor::fromInts({2}, {-1, 12}));
  g.addInitializer("shape_b", Tensor::fromInts({3}, {-1, 3, 4}));
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) w[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  g.addInitializer("w", Tensor::fromVector({3, 4}, w), true);  // import: a Mul's weight trains
  g.nodes.push_back({"r1", "Reshape", {"x", "shape_a"}, {"a"}, {}});
  g.nodes.push_back({"r2", "Reshape", {"a", "shape_b"}, {"b"}, {}});
  g.nodes.push_back({"mul", "Mul", {"b", "w"}, {"c"}, {}});
  ops::Attrs sa;
  sa.set("axis", int64_t{1});
  sa.set("coerce_2d", int64_t{1});
  g.nodes.push_back({"sm", "Softmax", {"c"}, {"y"}, sa});
  Tensor x({2, 3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = std::sin(0.7f * static_cast<float>(i));
  auto y = runGraph(g, {{"x", x}});
  double sum = 0;  // coerce_2d: each batch row of 12 sums to 1
  for (int i = 0; i < 12; ++i) sum += y[0].f32()[i];
  EXPECT_NEAR(sum, 1.0, 1e-5);
  roundTrip(g, {{"x", x}}, "synthetic", 1e-5);
}

}  // namespace
}  // namespace slim::test
