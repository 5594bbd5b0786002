// Broken or unsupported models must fail with a ModelError that names the
// file (and the node or tensor), never crash. Also covers TensorProto files
// and the exporter's refusal of slimtrain-only ops.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <fstream>

#include "onnx_test_util.h"
#include "trainer/core/rng.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/models/onnx/onnx_import.h"

namespace slim::test {
namespace {

// A valid one-node model: y = Relu(x) + b, written with `op` instead of Relu.
onnx::ModelProto tinyModel(const std::string& op = "Relu", const std::string& domain = "") {
  onnx::ModelProto m;
  m.set_ir_version(7);
  auto* os = m.add_opset_import();
  os->set_version(13);
  if (!domain.empty()) {
    auto* o2 = m.add_opset_import();
    o2->set_domain(domain);
    o2->set_version(1);
  }
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  for (const char* name : {"x", "y"}) {
    auto* v = std::string(name) == "x" ? g->add_input() : g->add_output();
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_value(4);
  }
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(4);
  for (int i = 0; i < 4; ++i) b->add_float_data(0.5f * i);
  auto* n1 = g->add_node();
  n1->set_name("act");
  n1->set_op_type(op);
  n1->set_domain(domain);
  n1->add_input("x");
  n1->add_output("h");
  auto* n2 = g->add_node();  // unnamed: gets a generated name
  n2->set_op_type("Add");
  n2->add_input("h");
  n2->add_input("b");
  n2->add_output("y");
  return m;
}

fs::path writeModel(const onnx::ModelProto& m, const std::string& name) {
  fs::path p = scratchDir("bad_input") / name;
  std::ofstream f(p, std::ios::binary);
  m.SerializeToOstream(&f);
  return p;
}

fs::path writeBytes(const std::string& bytes, const std::string& name) {
  fs::path p = scratchDir("bad_input_bytes") / name;
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  return p;
}

// Runs importOnnx and returns the ModelError message ("" if none was thrown).
std::string importError(const fs::path& p) {
  try {
    models::importOnnx(p.string());
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(OnnxBadInput, ValidTinyModelImportsWithGeneratedNodeName) {
  graph::Graph g = models::importOnnx(writeModel(tinyModel(), "ok.onnx").string());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].name, "act");
  EXPECT_FALSE(g.nodes[1].name.empty());
  auto y = runGraph(g, {{"x", Tensor::fromVector({4}, {-1, 2, -3, 4})}});
  EXPECT_EQ(compareTensors(y[0], Tensor::fromVector({4}, {0, 2.5f, 1, 5.5f}), 0, 0), "");
}

TEST(OnnxBadInput, TruncatedFilesNameTheFileAndSize) {
  std::string bytes = tinyModel().SerializeAsString();
  for (size_t cut : {size_t{1}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 3}) {
    fs::path p = writeBytes(bytes.substr(0, cut), "trunc.onnx");
    std::string msg = importError(p);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << "cut " << cut << ": " << msg;
    EXPECT_NE(msg.find(std::to_string(cut) + " bytes"), std::string::npos) << msg;
  }
}

TEST(OnnxBadInput, RandomBytesAndEmptyFile) {
  Rng rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    std::string bytes(64 + trial * 50, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng.next() & 0xff);
    fs::path p = writeBytes(bytes, "random.onnx");
    EXPECT_NE(importError(p).find(p.string()), std::string::npos) << "trial " << trial;
  }
  fs::path empty = writeBytes("", "empty.onnx");
  EXPECT_NE(importError(empty).find("empty.onnx"), std::string::npos);
  EXPECT_NE(importError("/nonexistent/model.onnx").find("/nonexistent/model.onnx"),
            std::string::npos);
}

TEST(OnnxBadInput, UnsupportedOpNamesNodeDomainAndOpset) {
  std::string msg = importError(writeModel(tinyModel("FancyOp"), "fancy.onnx"));
  EXPECT_NE(msg.find("fancy.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node 'act': unsupported op type 'FancyOp' (ONNX domain ai.onnx, opset 13)"),
            std::string::npos) << msg;
  msg = importError(writeModel(tinyModel("Relu", "com.example"), "custom.onnx"));
  EXPECT_NE(msg.find("unsupported op type 'Relu' (ONNX domain com.example, opset 1)"),
            std::string::npos) << msg;
}

TEST(OnnxBadInput, ExternalDataAndOldOpsetAreRefused) {
  onnx::ModelProto m = tinyModel();
  auto* b = m.mutable_graph()->mutable_initializer(0);
  b->clear_float_data();
  b->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = b->add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  std::string msg = importError(writeModel(m, "external.onnx"));
  EXPECT_NE(msg.find("initializer 'b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("external"), std::string::npos) << msg;
  m = tinyModel();
  m.mutable_opset_import(0)->set_version(5);
  EXPECT_NE(importError(writeModel(m, "old.onnx")).find("unsupported opset 5"), std::string::npos);
}

TEST(OnnxBadInput, TensorProtoFiles) {
  fs::path dir = scratchDir("tensor_proto");
  Tensor f = Tensor::fromVector({2, 3}, {1, -2, 3.5f, 0, 1e-8f, -7});
  models::writeTensorProto(f, (dir / "f.pb").string(), "f");
  std::string name;
  Tensor r = models::readTensorProto((dir / "f.pb").string(), &name);
  EXPECT_EQ(name, "f");
  EXPECT_EQ(compareTensors(r, f, 0, 0), "");
  Tensor i64 = Tensor::fromInts({3}, {-5, 0, int64_t{1} << 40});
  models::writeTensorProto(i64, (dir / "i.pb").string());
  EXPECT_EQ(compareTensors(models::readTensorProto((dir / "i.pb").string()), i64, 0, 0), "");
  // Typed fields: doubles become float32, bools uint8, int32 stays int32.
  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_dims(2);
  d.add_double_data(0.5);
  d.add_double_data(-2.25);
  Tensor rd = models::readTensorProto(writeBytes(d.SerializeAsString(), "d.pb").string());
  EXPECT_EQ(compareTensors(rd, Tensor::fromVector({2}, {0.5f, -2.25f}), 0, 0), "");
  onnx::TensorProto bad;
  bad.set_data_type(onnx::TensorProto::FLOAT);
  bad.add_dims(3);
  bad.add_float_data(1);  // 1 value for 3 elements
  fs::path bp = writeBytes(bad.SerializeAsString(), "bad.pb");
  EXPECT_THROW(models::readTensorProto(bp.string()), ModelError);
}

TEST(OnnxBadInput, ExportRefusesSlimtrainOps) {
  graph::Graph g;
  g.inputs.push_back({"x", {-1, 4}, DType::kF32});
  g.outputs.push_back({"y", {-1, 4}, DType::kF32});
  g.nodes.push_back({"fq", "FakeQuantAbsMax", {"x"}, {"y"}, {}});
  fs::path p = scratchDir("export_bad") / "m.onnx";
  try {
    models::exportOnnx(g, p.string());
    FAIL() << "export of a slimtrain-only op succeeded";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("node 'fq'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(models::exportOnnx(g, p.string(), 9), ModelError);
}

}  // namespace
}  // namespace slim::test
