// Import-time constant folding and parameter classification. Folding runs the
// registered kernels themselves (eval mode) on nodes whose inputs are all
// initializers, so it computes exactly what the executor would.
#include <map>

#include "trainer/models/onnx/onnx_import_detail.h"
#include "trainer/ops/op.h"

namespace slim::models::detail {
namespace {

// Ops never folded: random ones, and ones that behave differently in training.
bool foldable(const std::string& t) {
  static const char* kNever[] = {"Dropout", "BatchNormalization", "RandomNormal",
                                 "RandomUniform", "RandomNormalLike",
                                 "RandomUniformLike", "Bernoulli", "Multinomial"};
  for (const char* n : kNever)
    if (t == n) return false;
  return true;
}

// Runs node `n` on constant inputs; returns false when the kernel refuses.
bool evaluate(const graph::Graph& g, const graph::Node& n,
              std::map<std::string, Tensor>& results) {
  const auto& reg = ops::OpRegistry::get();
  if (!reg.has(n.op_type) || !foldable(n.op_type)) return false;
  try {
    auto op = reg.create(n.op_type, n.attrs, n.name);
    if (!op->stateInputs().empty()) return false;
    std::vector<Tensor> in_vals(n.inputs.size()), out_vals(n.outputs.size());
    std::vector<Tensor*> in, out;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!n.inputs[i].empty()) in_vals[i] = g.initializers.at(n.inputs[i]);
      in.push_back(n.inputs[i].empty() ? nullptr : &in_vals[i]);
    }
    for (auto& o : out_vals) out.push_back(&o);
    ops::RunContext ctx;
    op->forward(in, out, ctx);
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      if (!out_vals[i].defined()) return false;
      results[n.outputs[i]] = out_vals[i].clone();  // never alias an input
    }
    return true;
  } catch (const std::exception&) {
    return false;  // leave it to the executor, which reports errors with context
  }
}

}  // namespace

int foldConstants(graph::Graph& g) {
  int folded = 0;
  std::vector<graph::Node> kept;
  for (const graph::Node& n : g.nodes) {
    bool all_const = true;
    for (const auto& in : n.inputs)
      if (!in.empty() && !g.isInitializer(in)) all_const = false;
    std::map<std::string, Tensor> results;
    if (all_const && !n.inputs.empty() && evaluate(g, n, results)) {
      for (auto& kv : results) g.addInitializer(kv.first, kv.second);
      ++folded;
      continue;
    }
    kept.push_back(n);
  }
  g.nodes = std::move(kept);
  g.pruneUnused();
  return folded;
}

void classifyInitializers(graph::Graph& g) {
  // op type -> (weight input slots, buffer input slots)
  static const std::map<std::string, std::pair<std::vector<size_t>, std::vector<size_t>>>
      kSlots = {{"Conv", {{1, 2}, {}}},
                {"ConvTranspose", {{1, 2}, {}}},
                {"Gemm", {{1, 2}, {}}},
                {"MatMul", {{1}, {}}},
                {"BatchNormalization", {{1, 2}, {3, 4}}},
                {"LayerNormalization", {{1, 2}, {}}},
                {"InstanceNormalization", {{1, 2}, {}}},
                {"PRelu", {{1}, {}}}};
  for (const graph::Node& n : g.nodes) {
    auto isFloatInit = [&](size_t slot) {
      return slot < n.inputs.size() && g.isInitializer(n.inputs[slot]) &&
             g.initializers.at(n.inputs[slot]).dtype() == DType::kF32;
    };
    auto isActivation = [&](size_t slot) {
      return slot < n.inputs.size() && !n.inputs[slot].empty() && !g.isInitializer(n.inputs[slot]);
    };
    // A weight contracted with an activation by a two-operand Einsum (the op's
    // backward covers one and two operands).
    if (n.op_type == "Einsum" && n.inputs.size() == 2)
      for (size_t s : {size_t{0}, size_t{1}})
        if (isFloatInit(s) && isActivation(1 - s)) g.trainable.insert(n.inputs[s]);
    // An Embedding: Gather of a float table by the batch's indices.
    if (n.op_type == "Gather" && isFloatInit(0) && isActivation(1))
      g.trainable.insert(n.inputs[0]);
    // A bias or scale vector an activation is shifted / scaled by (a MatMul's
    // bias, a decomposed LayerNorm's gamma and beta, a layer scale, a
    // position embedding); scalars (epsilons, GELU's constants) stay constant.
    if ((n.op_type == "Add" || n.op_type == "Mul") && n.inputs.size() == 2)
      for (size_t s : {size_t{0}, size_t{1}})
        if (isFloatInit(s) && isActivation(1 - s) && g.initializers.at(n.inputs[s]).numel() > 1)
          g.trainable.insert(n.inputs[s]);
    auto it = kSlots.find(n.op_type);
    if (it == kSlots.end()) continue;
    for (size_t s : it->second.first)
      if (isFloatInit(s)) g.trainable.insert(n.inputs[s]);
    for (size_t s : it->second.second)
      if (isFloatInit(s)) g.buffers.insert(n.inputs[s]);
  }
  for (const auto& b : g.buffers) g.trainable.erase(b);
}

}  // namespace slim::models::detail
