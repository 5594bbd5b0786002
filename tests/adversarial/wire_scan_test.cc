// findWireFault: the damaged field of a protobuf that failed to parse, by
// path and byte offset; and importOnnxBytes / readTensorProto say it.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <onnx/onnx_pb.h>

#include "trainer/core/error.h"
#include "trainer/models/onnx/onnx_import.h"
#include "trainer/models/onnx/tensor_proto.h"
#include "trainer/models/onnx/wire_scan.h"

namespace slim::models {
namespace {

// A two-node model: ir_version, graph{node x2, initializer, input, output}, opset.
std::string modelBytes() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  for (const char* op : {"Relu", "Neg"}) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->add_input(std::string(op) == "Relu" ? "x" : "r");
    n->add_output(std::string(op) == "Relu" ? "r" : "y");
  }
  auto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(3);
  for (float v : {1.f, 2.f, 3.f}) t->add_float_data(v);
  for (auto* vi : {g->add_input(), g->add_output()}) {
    vi->set_name(vi == &g->input(0) ? "x" : "y");
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_value(3);
  }
  return m.SerializeAsString();
}

// Offset of the top-level field with number `field` (1-byte tags here).
size_t topFieldOffset(const std::string& b, int field) {
  size_t p = 0;
  while (p < b.size()) {
    const int tag = static_cast<uint8_t>(b[p]);
    if (tag >> 3 == field) return p;
    p += 1;
    uint64_t v = 0;
    for (int s = 0;; s += 7) {
      const auto c = static_cast<uint8_t>(b[p++]);
      v |= static_cast<uint64_t>(c & 0x7f) << s;
      if (!(c & 0x80)) break;
    }
    if ((tag & 7) == 2) p += v;
  }
  return std::string::npos;
}

TEST(WireScan, IntactModelHasNoFault) {
  EXPECT_EQ(findWireFault(modelBytes(), onnx::ModelProto::descriptor()).offset, -1);
}

TEST(WireScan, TruncationNamesTheFieldThatRunsPastTheEnd) {
  const std::string full = modelBytes();
  const size_t graph = topFieldOffset(full, 7);
  const size_t opset = topFieldOffset(full, 8);  // right after the graph
  ASSERT_NE(graph, std::string::npos);
  ASSERT_NE(opset, std::string::npos);
  for (size_t cut = graph + 1; cut < opset; cut += 5) {
    const std::string b = full.substr(0, cut);
    onnx::ModelProto m;
    if (m.ParseFromString(b)) continue;  // cut between two top-level fields
    const WireFault f = findWireFault(b, onnx::ModelProto::descriptor());
    EXPECT_EQ(f.offset, static_cast<int64_t>(graph)) << "cut at " << cut;
    EXPECT_EQ(f.field, "graph");
    // The length itself cut (a graph over 127 bytes has a 2-byte length), or
    // a whole length that runs past the end.
    EXPECT_TRUE(f.why == "a truncated length" ||
                f.why.find("running past the end of the file") != std::string::npos)
        << f.why;
  }
}

TEST(WireScan, BadWireTypeInANestedFieldIsLocatedExactly) {
  std::string b = modelBytes();
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(b));
  // The second node's op_type tag: find "Neg" and step back over its tag and length.
  const size_t neg = b.find("Neg");
  ASSERT_NE(neg, std::string::npos);
  const size_t tag = neg - 2;
  b[tag] = static_cast<char>((b[tag] & 0xF8) | 7);
  ASSERT_FALSE(m.ParseFromString(b));
  const WireFault f = findWireFault(b, onnx::ModelProto::descriptor());
  EXPECT_EQ(f.offset, static_cast<int64_t>(tag));
  EXPECT_EQ(f.field, "graph.node[1].op_type");
  EXPECT_EQ(f.why, "invalid wire type 7");
  EXPECT_NE(describeWireFault(f, b.size()).find("at byte offset " + std::to_string(tag) + " of " +
                                                std::to_string(b.size())),
            std::string::npos);
}

TEST(WireScan, PackedArrayOfTheWrongWidth) {
  onnx::TensorProto t;
  t.add_dims(2);
  t.add_float_data(1.f);
  t.add_float_data(2.f);
  std::string b = t.SerializeAsString();
  const size_t floats = b.find('\x22');  // field 4 (float_data), packed: 0x22, length 8
  ASSERT_NE(floats, std::string::npos);
  b[floats + 1] = 7;  // 7 bytes: not a whole number of floats
  b.resize(floats + 2 + 7);
  const WireFault f = findWireFault(b, onnx::TensorProto::descriptor());
  EXPECT_EQ(f.field, "float_data[0]");
  EXPECT_NE(f.why.find("not a multiple of 4"), std::string::npos) << f.why;
}

TEST(WireScan, ImportAndTensorFilesReportTheOffset) {
  const std::string full = modelBytes();
  const std::string cut = full.substr(0, topFieldOffset(full, 8) - 5);  // inside the graph
  try {
    importOnnxBytes(cut, "cut.onnx");
    FAIL() << "a truncated model imported";
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cut.onnx"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at byte offset " + std::to_string(topFieldOffset(full, 7))),
              std::string::npos)
        << msg;
    EXPECT_EQ(exitCodeFor(e), kExitUsage);
  }
  onnx::TensorProto t;
  t.set_name("x");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(4);
  t.set_raw_data(std::string(16, '\0'));
  const std::string tb = t.SerializeAsString();
  const std::string path = ::testing::TempDir() + "/wire_scan_cut.pb";
  std::ofstream(path, std::ios::binary) << tb.substr(0, tb.size() - 3);
  try {
    readTensorProto(path);
    FAIL() << "a truncated tensor file was read";
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("raw_data"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte offset"), std::string::npos) << msg;
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace slim::models
