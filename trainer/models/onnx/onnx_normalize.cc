// Opset normalisation: slimtrain's IR uses the opset-13 form of every op (the
// form the exporter writes). Older or newer models are rewritten node by node
// here; the kernels themselves accept both forms, so this only matters for
// export and for ops whose semantics changed (Softmax before 13).
#include <algorithm>

#include "trainer/models/onnx/onnx_import_detail.h"

namespace slim::models::detail {
namespace {

// Makes input slot `i` of `n` exist (filled with "" for omitted inputs).
void ensureInputs(graph::Node& n, size_t count) {
  if (n.inputs.size() < count) n.inputs.resize(count);
}

// Adds `t` as a plain constant named after the node and `what`.
std::string addConst(graph::Graph& g, const graph::Node& n, const std::string& what,
                     Tensor t) {
  std::string name = g.uniqueName(n.name + "_" + what);
  g.addInitializer(name, std::move(t));
  return name;
}

// Moves INTS attribute `attr` into input `slot` as an int64 tensor.
void intsAttrToInput(graph::Graph& g, graph::Node& n, const std::string& attr,
                     size_t slot) {
  if (!n.attrs.has(attr)) return;
  std::vector<int64_t> v = n.attrs.getInts(attr);
  n.attrs.erase(attr);
  ensureInputs(n, slot + 1);
  n.inputs[slot] =
      addConst(g, n, attr, Tensor::fromInts({static_cast<int64_t>(v.size())}, v));
}

// Moves FLOAT attribute `attr` into input `slot` as a float scalar.
void floatAttrToInput(graph::Graph& g, graph::Node& n, const std::string& attr,
                      size_t slot) {
  if (!n.attrs.has(attr)) return;
  float v = n.attrs.getFloat(attr);
  n.attrs.erase(attr);
  ensureInputs(n, slot + 1);
  n.inputs[slot] = addConst(g, n, attr, Tensor::scalar(v));
}

// Opset 18 gave these reductions an axes input; opset 13 has an attribute.
bool isReduce18(const std::string& t) {
  static const char* kOps[] = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                               "ReduceL1", "ReduceL2", "ReduceLogSum",
                               "ReduceLogSumExp", "ReduceSumSquare"};
  return std::any_of(std::begin(kOps), std::end(kOps),
                     [&](const char* o) { return t == o; });
}

[[noreturn]] void unsupported(const graph::Node& n, int opset, const std::string& what) {
  SLIM_THROW(ModelError, "node '", n.name, "' (", n.op_type, ", opset ", opset, "): ",
             what, " is not supported");
}

// Forms valid at any opset that slimtrain's kernels do not implement.
void rejectUnsupported(const graph::Graph& g, const graph::Node& n, int opset) {
  const std::string& t = n.op_type;
  auto hasOutput = [&](size_t i) { return n.outputs.size() > i && !n.outputs[i].empty(); };
  if (t == "BatchNormalization" &&
      (n.attrs.getInt("training_mode", 0) != 0 || hasOutput(1)))
    unsupported(n, opset, "training-mode BatchNormalization with statistics outputs "
                "(slimtrain switches BN to batch statistics itself)");
  if (t == "MaxPool" && hasOutput(1)) unsupported(n, opset, "the Indices output of MaxPool");
  if (t == "Dropout" && n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const std::string& tm = n.inputs[2];
    if (!g.isInitializer(tm) || g.initializers.at(tm).numel() != 1 ||
        g.initializers.at(tm).data<uint8_t>()[0] != 0)
      unsupported(n, opset, "a training_mode input on Dropout (slimtrain sets train mode "
                  "itself)");
  }
}

}  // namespace

void normalizeNode(graph::Graph& g, graph::Node& n, int opset) {
  const std::string& t = n.op_type;
  rejectUnsupported(g, n, opset);
  if (t == "BatchNormalization") n.attrs.erase("training_mode");
  if ((t == "Softmax" || t == "LogSoftmax" || t == "Hardmax") && opset < 13) {
    n.attrs.set("coerce_2d", int64_t{1});
    if (!n.attrs.has("axis")) n.attrs.set("axis", int64_t{1});
  } else if ((t == "Squeeze" || t == "Unsqueeze" || t == "ReduceSum") && opset < 13) {
    intsAttrToInput(g, n, "axes", 1);
  } else if (isReduce18(t) && opset >= 18 && n.inputs.size() > 1) {
    const std::string axes = n.inputs[1];
    if (!axes.empty()) {
      if (!g.isInitializer(axes))
        unsupported(n, opset, "a computed (non-constant) axes input");
      const Tensor& a = g.initializers.at(axes);
      std::vector<int64_t> v(a.data<int64_t>(), a.data<int64_t>() + a.numel());
      if (v.empty() && n.attrs.getInt("noop_with_empty_axes", 0) != 0) {
        n.op_type = "Identity";
        n.attrs = ops::Attrs();
      } else {
        n.attrs.set("axes", v);
      }
    }
    n.inputs.resize(1);
    n.attrs.erase("noop_with_empty_axes");
  } else if (t == "Clip" && opset < 11) {
    floatAttrToInput(g, n, "min", 1);
    floatAttrToInput(g, n, "max", 2);
  } else if (t == "Pad" && opset < 11) {
    intsAttrToInput(g, n, "pads", 1);
    floatAttrToInput(g, n, "value", 2);
  } else if (t == "Pad" && n.inputs.size() > 3 && !n.inputs[3].empty()) {
    unsupported(n, opset, "the axes input of Pad (opset 18)");
  } else if (t == "Dropout" && opset < 12) {
    floatAttrToInput(g, n, "ratio", 1);
    n.attrs.erase("is_test");
  } else if (t == "BatchNormalization" && opset < 9) {
    if (n.attrs.getInt("spatial", 1) != 1)
      unsupported(n, opset, "spatial=0 (per-activation batch normalization)");
    n.attrs.erase("spatial");
  } else if (t == "Slice" && opset < 10) {
    if (!n.attrs.has("starts") || !n.attrs.has("ends"))
      unsupported(n, opset, "Slice without starts/ends");
    intsAttrToInput(g, n, "starts", 1);
    intsAttrToInput(g, n, "ends", 2);
    intsAttrToInput(g, n, "axes", 3);
  }
}

}  // namespace slim::models::detail
