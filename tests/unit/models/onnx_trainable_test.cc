// Which float initializers the ONNX importer makes trainable
// (detail::classifyInitializers): an Einsum's weight when it is contracted
// with an activation by a two-operand Einsum (the op's backward covers one and
// two operands), not one of three operands and not a constant pair; an
// Embedding table; a MatMul weight.
#include <gtest/gtest.h>

#include "trainer/models/onnx/onnx_import_detail.h"

namespace slim::models {
namespace {

graph::Graph withInputs(const std::vector<std::string>& activations) {
  graph::Graph g;
  for (const auto& a : activations) g.inputs.push_back({a, {2, 3}, DType::kF32});
  return g;
}

void addNode(graph::Graph& g, const std::string& type, std::vector<std::string> inputs) {
  graph::Node n;
  n.name = type + std::to_string(g.nodes.size());
  n.op_type = type;
  n.inputs = std::move(inputs);
  n.outputs = {n.name + "_out"};
  g.nodes.push_back(n);
}

Tensor weight() {
  Tensor t({3, 4}, DType::kF32);
  t.fill(0.5f);
  return t;
}

TEST(OnnxTrainable, EinsumWeightOfTwoOperandsTrains) {
  graph::Graph g = withInputs({"x"});
  g.addInitializer("w", weight());
  g.addInitializer("w_first", weight());
  addNode(g, "Einsum", {"x", "w"});
  addNode(g, "Einsum", {"w_first", "x"});
  detail::classifyInitializers(g);
  EXPECT_TRUE(g.trainable.count("w"));
  EXPECT_TRUE(g.trainable.count("w_first"));
}

TEST(OnnxTrainable, EinsumOfThreeOperandsOrOfConstantsDoesNot) {
  graph::Graph g = withInputs({"x", "y"});
  g.addInitializer("w3", weight());
  g.addInitializer("c1", weight());
  g.addInitializer("c2", weight());
  addNode(g, "Einsum", {"x", "w3", "y"});
  addNode(g, "Einsum", {"c1", "c2"});
  addNode(g, "Einsum", {"x", "y"});
  detail::classifyInitializers(g);
  EXPECT_FALSE(g.trainable.count("w3"));
  EXPECT_FALSE(g.trainable.count("c1"));
  EXPECT_FALSE(g.trainable.count("c2"));
}

TEST(OnnxTrainable, EmbeddingTableAndMatMulWeightTrain) {
  graph::Graph g = withInputs({"x"});
  g.inputs.push_back({"ids", {2, 5}, DType::kI64});
  g.addInitializer("table", weight());
  g.addInitializer("m", weight());
  addNode(g, "Gather", {"table", "ids"});
  addNode(g, "MatMul", {"x", "m"});
  detail::classifyInitializers(g);
  EXPECT_TRUE(g.trainable.count("table"));
  EXPECT_TRUE(g.trainable.count("m"));
}

}  // namespace
}  // namespace slim::models
