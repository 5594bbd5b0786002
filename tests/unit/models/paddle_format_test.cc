// Paddle files: params records (dtypes, order, exact EOF), separate-params
// folders, program-only import, and bad input (truncated, wrong count, shape
// mismatch, corrupt program, JSON, unsupported op) -> ModelError with context.
#include <filesystem>
#include <fstream>
#include <cstring>
#include <unistd.h>

#include "tests/unit/models/paddle_test_util.h"
#include "trainer/models/paddle/paddle_params.h"
#include "trainer/models/paddle/paddle_program.h"

namespace slim::test {
namespace {

// A small model: conv (param "b_w") + elementwise_add (param "a_bias"); the
// names are declared in non-sorted order so the file order matters.
PaddleModelBuilder smallModel(Tensor& w, Tensor& bias) {
  PaddleModelBuilder b;
  b.feed("img", {-1, 2, 3, 3});
  w = randomTensor({2, 2, 1, 1}, 1);
  bias = randomTensor({2}, 2);
  b.param("b_w", w);
  b.param("a_bias", bias);
  b.var("c", {-1, 2, 3, 3});
  b.var("out", {-1, 2, 3, 3});
  b.op("conv2d").in("Input", {"img"}).in("Filter", {"b_w"}).out("Output", {"c"});
  b.op("elementwise_add").in("X", {"c"}).in("Y", {"a_bias"}).out("Out", {"out"}).i("axis", 1);
  b.fetch("out");
  return b;
}

std::string tmpDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("slim_paddle_" + name + "_" +
                                                      std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// Expects a ModelError whose message holds every fragment.
template <class F>
void expectModelError(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL() << "no ModelError";
  } catch (const ModelError& e) {
    for (const auto& s : fragments)
      EXPECT_NE(std::string(e.what()).find(s), std::string::npos)
          << "'" << s << "' missing from: " << e.what();
  }
}

TEST(PaddleFormat, RecordLayoutMatchesTheDocumentedExample) {
  // First 24 bytes of a [32] FP32 record, as in paddle-format.md §3.
  std::string r = paddleRecord(Tensor({32}), pp::VarType::FP32);
  ASSERT_EQ(r.size(), 24u + 128u);
  const unsigned char want[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                4, 0, 0, 0, 0x08, 0x05, 0x10, 0x20};
  EXPECT_EQ(std::memcmp(r.data(), want, sizeof(want)), 0);
}

TEST(PaddleFormat, RecordDtypes) {
  Tensor f = randomTensor({2, 3}, 3);
  std::string r64 = paddleRecord(f, pp::VarType::FP64);
  size_t off = 0;
  Tensor back = models::readPaddleRecord(r64.data(), r64.size(), off, "mem", "v");
  EXPECT_EQ(off, r64.size());
  expectClose(back, f, 1e-7f, "fp64 -> float");
  Tensor iv = Tensor::fromInts({3}, {-1, 7, 1LL << 40});
  std::string ri = paddleRecord(iv, pp::VarType::INT64);
  off = 0;
  Tensor ib = models::readPaddleRecord(ri.data(), ri.size(), off, "mem", "v");
  ASSERT_EQ(ib.dtype(), DType::kI64);
  EXPECT_EQ(ib.data<int64_t>()[2], 1LL << 40);
  // BOOL is refused with the variable named.
  std::string rb = paddleRecord(Tensor({4}, DType::kU8), pp::VarType::BOOL);
  off = 0;
  expectModelError([&] { models::readPaddleRecord(rb.data(), rb.size(), off, "f.bin", "flag"); },
                   {"f.bin", "flag", "BOOL"});
  // A non-zero format version is refused.
  std::string bad = paddleRecord(f, pp::VarType::FP32);
  bad[0] = 1;
  off = 0;
  expectModelError([&] { models::readPaddleRecord(bad.data(), bad.size(), off, "f.bin", "w"); },
                   {"expected file format: 0"});
}

TEST(PaddleFormat, CombinedAndSeparateParamsGiveTheSameGraph) {
  Tensor w, bias;
  auto b = smallModel(w, bias);
  const std::string dir = tmpDir("both");
  b.write(dir + "/comb", "model.pdmodel", "model.pdiparams");
  b.write(dir + "/sep", "__model__", "");
  auto g1 = models::importPaddleDir(dir + "/comb", "model.pdmodel", "model.pdiparams");
  auto g2 = models::importPaddleDir(dir + "/sep", "__model__", "");
  for (auto* g : {&g1, &g2}) {
    ASSERT_EQ(g->inputs.size(), 1u);
    EXPECT_EQ(g->inputs[0].name, "img");
    EXPECT_EQ(shapeStr(g->inputs[0].shape), "[-1, 2, 3, 3]");
    ASSERT_EQ(g->outputs.size(), 1u);
    EXPECT_EQ(g->outputs[0].name, "out");
    expectClose(g->initializers.at("b_w"), w, 0.f, "b_w");
    expectClose(g->initializers.at("a_bias").reshaped({2}), bias, 0.f, "a_bias");
  }
  auto info = models::parsePaddleProgram(dir + "/comb/model.pdmodel");
  EXPECT_EQ(info.param_names, (std::vector<std::string>{"a_bias", "b_w"}));
  EXPECT_EQ(info.opTypes(), (std::vector<std::string>{"feed", "conv2d", "elementwise_add", "fetch"}));
  std::filesystem::remove_all(dir);
}

TEST(PaddleFormat, TruncatedExtraAndMissingRecords) {
  Tensor w, bias;
  auto b = smallModel(w, bias);
  const std::string prog = b.programBytes(), params = b.combinedParams();
  // Truncated inside the second record's data.
  expectModelError([&] {
    models::importPaddleBytes(prog, params.substr(0, params.size() - 3), "m");
  }, {"m (params)", "truncated", "b_w", "byte offset"});
  // One byte too many.
  expectModelError([&] { models::importPaddleBytes(prog, params + "x", "m"); },
                   {"left over", "byte offset " + std::to_string(params.size())});
  // Only the first record: the count is wrong.
  std::string first = paddleRecord(bias, pp::VarType::FP32);
  expectModelError([&] { models::importPaddleBytes(prog, first, "m"); },
                   {"ends at byte offset " + std::to_string(first.size()), "b_w"});
  // Missing file of a separate-params folder.
  const std::string dir = tmpDir("missing");
  b.write(dir, "__model__", "");
  std::filesystem::remove(dir + "/b_w");
  expectModelError([&] { models::importPaddleDir(dir, "__model__", ""); }, {dir + "/b_w"});
  std::filesystem::remove_all(dir);
}

TEST(PaddleFormat, ShapeMismatchNamesTheParameter) {
  Tensor w, bias;
  auto b = smallModel(w, bias);
  // The program says a_bias is [2]; the file holds [3].
  std::string params = paddleRecord(randomTensor({3}, 4), pp::VarType::FP32) +
                       paddleRecord(w, pp::VarType::FP32);
  expectModelError([&] { models::importPaddleBytes(b.programBytes(), params, "m"); },
                   {"a_bias", "[3]", "[2]"});
}

TEST(PaddleFormat, CorruptProgramIsLocated) {
  Tensor w, bias;
  auto b = smallModel(w, bias);
  std::string prog = b.programBytes();
  expectModelError([&] { models::parsePaddleProgramBytes(prog.data(), prog.size() - 7, "p"); },
                   {"corrupt Paddle program 'p'", "byte offset"});
  std::string junk = prog;
  junk[0] = static_cast<char>(0x0f);  // field 1 with the invalid wire type 7
  expectModelError([&] { models::parsePaddleProgramBytes(junk.data(), junk.size(), "p"); },
                   {"byte offset 0"});
  expectModelError([&] { models::parsePaddleProgramBytes("", 0, "empty"); }, {"no blocks"});
  std::string json = "{\"program\": {}}";
  expectModelError([&] { models::parsePaddleProgramBytes(json.data(), json.size(), "m.json"); },
                   {"PIR"});
  expectModelError([&] { models::importPaddle("/nonexistent/inference.json", ""); }, {"PIR"});
  expectModelError([&] { models::importPaddle("/nonexistent/model.pdmodel", "x"); },
                   {"/nonexistent/model.pdmodel"});
}

TEST(PaddleFormat, UnsupportedOpNamesTypeIndexAndOutput) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 4});
  b.var("y", {-1, 4});
  b.op("relu").in("X", {"x"}).out("Out", {"r"});
  b.op("my_custom_op").in("X", {"r"}).out("Out", {"y"});
  b.fetch("y");
  expectModelError([&] { models::importPaddleBytes(b.programBytes(), "", "m"); },
                   {"my_custom_op", "#2", "'y'"});
}

TEST(PaddleFormat, ProgramOnlyModeSynthesisesParams) {
  Tensor w, bias;
  auto b = smallModel(w, bias);
  models::PaddleImportOptions opts;
  opts.program_only = true;
  auto g = models::importPaddleBytes(b.programBytes(), "", "m", opts);
  ASSERT_TRUE(g.isInitializer("b_w"));
  EXPECT_EQ(shapeStr(g.initializers.at("b_w").shape()), "[2, 2, 1, 1]");
  for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(g.initializers.at("b_w").f32()[k], 0.f);
  // Without program_only the missing params are an error, not zeros.
  expectModelError([&] { models::importPaddleBytes(b.programBytes(), "", "m"); }, {"a_bias"});
}

TEST(PaddleFormat, InPlaceOpsStaySingleAssignment) {
  PaddleModelBuilder b;
  b.feed("x", {-1, 3});
  b.var("h", {-1, 3});
  b.op("scale").in("X", {"x"}).out("Out", {"h"}).f("scale", 2.f);
  b.op("relu").in("X", {"h"}).out("Out", {"h"});  // in place
  b.fetch("h");
  auto g = importBuilt(b);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].outputs[0], "h");
  EXPECT_EQ(g.nodes[1].inputs[0], "h");
  EXPECT_NE(g.nodes[1].outputs[0], "h");
  EXPECT_EQ(g.outputs[0].name, g.nodes[1].outputs[0]);
  SLIM_SKIP_IF_NO_KERNELS(g);
  Tensor x = Tensor::fromVector({1, 3}, {-1.f, 0.5f, 2.f});
  expectClose(runForward(g, {{"x", x}}).at(g.outputs[0].name),
              Tensor::fromVector({1, 3}, {0.f, 1.f, 4.f}), 0.f, "relu(2x)");
}

}  // namespace
}  // namespace slim::test
