// Model inspection: shape inference by running the graph once in inference
// mode on a batch of one (exact for every op slimtrain runs), plus the
// compression passes' own selection logic applied to a copy of the graph.
#include "trainer/train/inspect.h"

#include <algorithm>
#include <map>
#include <new>
#include <sstream>

#include "trainer/compress/distill/distill_nodes.h"
#include "trainer/compress/prune/candidates.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/config/config.h"
#include "trainer/graph/executor.h"
#include "trainer/models/load.h"
#include "trainer/train/metrics.h"

namespace slim::train {
namespace {

std::string shapeJson(const Shape& s) { return jsonShape(s); }

// Distillation candidates, as ACT's FAQ asks ("which nodes do I distill?"):
// the last tensor computed at each spatial resolution of the backbone (in
// graph order, every (H, W) of a 4-D activation; the last one written before
// the network moves on is that stage's output), then the default nodes and
// the model's outputs not listed yet.
std::vector<std::string> stageOutputs(const graph::Graph& g,
                                      const std::map<std::string, Shape>& shapes,
                                      const std::vector<std::string>& defaults) {
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> stages;  // in first-seen order
  for (const auto& n : g.nodes)
    for (const auto& t : n.outputs) {
      auto it = shapes.find(t);
      if (it == shapes.end() || it->second.size() != 4) continue;
      const std::pair<int64_t, int64_t> hw{it->second[2], it->second[3]};
      auto st = std::find_if(stages.begin(), stages.end(),
                             [&](const auto& s) { return s.first == hw; });
      if (st == stages.end()) stages.push_back({hw, t});
      else st->second = t;
    }
  std::vector<std::string> out;
  for (const auto& s : stages) out.push_back(s.second);
  std::vector<std::string> tail = defaults;
  for (const auto& o : g.outputs) tail.push_back(o.name);
  for (const auto& t : tail)
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  return out;
}

}  // namespace

std::string inspectModel(const std::string& model_path, bool json, const std::string& cfg_path) {
  graph::Graph g = models::loadModel(model_path);
  // No outputs, or static input shapes it cannot run on: exit 2 (load.h).
  models::checkModelRuns(g, model_path);
  config::QuantAware quant;
  config::UnstructurePrune prune;
  std::vector<std::string> configured;  // student nodes the config's Distillation names
  if (!cfg_path.empty()) {
    config::Config c = config::loadConfig(cfg_path);
    if (c.quant) quant = *c.quant;
    if (c.prune) prune = *c.prune;
    if (c.distill)
      for (const auto& grp : c.distill->groups)
        for (const auto& p : grp.pairs) configured.push_back(p.student);
  }
  // Shapes: run once with batch 1 (dynamic dims -> 1) in inference mode,
  // unfused: every node then writes its own output (a fused GELU's or
  // hard-swish's intermediates are never computed otherwise).
  std::map<std::string, Shape> shapes;
  std::string shape_error;
  {
    graph::Graph run = g;
    try {
      graph::Executor ex(run, false);
      std::map<std::string, Tensor> feeds;
      for (const auto& in : run.inputs) {
        Shape s = in.shape;
        for (auto& d : s) if (d < 0) d = 1;
        feeds[in.name] = Tensor(s, in.dtype);
      }
      ops::RunContext ctx;
      ex.forward(feeds, ctx);
      for (const auto& name : run.tensorNames())
        if (ex.hasValue(name)) shapes[name] = ex.value(name).shape();
    } catch (const std::bad_alloc&) {
      shape_error = "a tensor of implausible size (more memory than this machine has)";
    } catch (const std::exception& e) {
      shape_error = e.what();
    }
  }
  // What the passes would select (on copies).
  graph::Graph qg = g.clone();
  compress::QatInfo qi = compress::insertQat(qg, quant);
  config::UnstructurePrune all = prune;
  all.prune_params_type = "";
  config::UnstructurePrune c1x1 = prune;
  c1x1.prune_params_type = "conv1x1_only";
  std::vector<std::string> prune_default = compress::prunableParams(g, all);
  std::vector<std::string> prune_1x1 = compress::prunableParams(g, c1x1);
  std::vector<std::string> distill = compress::defaultDistillNodes(g);
  // The nodes the config in effect distils: its Distillation's, or the
  // default ones (no --config, or a config that names no node).
  const std::vector<std::string>& used = configured.empty() ? distill : configured;
  std::vector<std::string> proposals = stageOutputs(g, shapes, distill);
  for (const auto& n : used)
    if (std::find(proposals.begin(), proposals.end(), n) == proposals.end()) proposals.push_back(n);
  auto isDefault = [&](const std::string& n) {
    return std::find(distill.begin(), distill.end(), n) != distill.end();
  };
  auto isUsed = [&](const std::string& n) {
    return std::find(used.begin(), used.end(), n) != used.end();
  };
  int64_t n_params = 0;
  for (const auto& p : g.trainable) n_params += g.initializers.at(p).numel();

  auto shapeOf = [&](const std::string& n) -> std::string {
    auto it = shapes.find(n);
    return it == shapes.end() ? "?" : shapeStr(it->second);
  };
  std::ostringstream os;
  if (json) {
    JsonObject o = commandJson("inspect");
    o.add("model", model_path).add("name", g.name);
    std::string ins = "[", outs = "[", tensors = "[", params = "[", qops = "[";
    for (size_t i = 0; i < g.inputs.size(); ++i)
      ins += std::string(i ? ", " : "") + "{\"name\": " + jsonString(g.inputs[i].name) +
             ", \"shape\": " + shapeJson(g.inputs[i].shape) + "}";
    for (size_t i = 0; i < g.outputs.size(); ++i)
      outs += std::string(i ? ", " : "") + "{\"name\": " + jsonString(g.outputs[i].name) +
              ", \"shape\": " +
              (shapes.count(g.outputs[i].name) ? shapeJson(shapes[g.outputs[i].name]) : "null") +
              "}";
    bool first = true;
    for (const auto& n : g.nodes)
      for (const auto& t : n.outputs) {
        tensors += std::string(first ? "" : ", ") + "{\"name\": " + jsonString(t) +
                   ", \"shape\": " + (shapes.count(t) ? shapeJson(shapes[t]) : "null") +
                   ", \"op\": " + jsonString(n.op_type) + ", \"node\": " + jsonString(n.name) + "}";
        first = false;
      }
    first = true;
    for (const auto& [name, t] : g.initializers) {
      params += std::string(first ? "" : ", ") + "{\"name\": " + jsonString(name) +
                ", \"shape\": " + shapeJson(t.shape()) + ", \"kind\": " +
                jsonString(g.trainable.count(name) ? "trainable" : g.buffers.count(name) ? "buffer" : "constant") + "}";
      first = false;
    }
    for (size_t i = 0; i < qi.nodes.size(); ++i)
      qops += std::string(i ? ", " : "") + "{\"node\": " + jsonString(qi.nodes[i].node) +
              ", \"kind\": " + jsonString(qi.nodes[i].kind) + ", \"weight\": " +
              jsonString(qi.nodes[i].weight) + "}";
    o.addRaw("inputs", ins + "]").addRaw("outputs", outs + "]").addRaw("tensors", tensors + "]");
    o.addRaw("parameters", params + "]").add("parameter_count", n_params);
    o.addRaw("quantized_ops", qops + "]");
    o.add("prunable_params", prune_default);
    o.add("prunable_params_conv1x1_only", prune_1x1);
    o.add("default_distill_nodes", distill);
    std::string props = "[";
    for (size_t i = 0; i < proposals.size(); ++i)
      props += std::string(i ? ", " : "") + "{\"name\": " + jsonString(proposals[i]) +
               ", \"shape\": " +
               (shapes.count(proposals[i]) ? shapeJson(shapes[proposals[i]]) : "null") +
               ", \"default\": " + (isDefault(proposals[i]) ? "true" : "false") +
               ", \"used\": " + (isUsed(proposals[i]) ? "true" : "false") + "}";
    o.addRaw("proposed_distill_nodes", props + "]");
    if (!shape_error.empty()) o.add("shape_inference_error", shape_error);
    os << o.str() << "\n";
    return os.str();
  }
  os << "model " << model_path << " (" << g.name << "): " << g.nodes.size() << " nodes, "
     << g.trainable.size() << " trainable tensors, " << n_params << " parameters\n";
  os << "\ninputs:\n";
  for (const auto& v : g.inputs) os << "  " << v.name << " " << shapeStr(v.shape) << " " << dtypeName(v.dtype) << "\n";
  os << "outputs:\n";
  for (const auto& v : g.outputs) os << "  " << v.name << " " << shapeOf(v.name) << "\n";
  os << "\ntensors (shape at batch 1, producing op):\n";
  for (const auto& n : g.nodes)
    for (const auto& t : n.outputs) os << "  " << t << " " << shapeOf(t) << " <- " << n.op_type << " '" << n.name << "'\n";
  if (!shape_error.empty()) os << "  (shape inference stopped: " << shape_error << ")\n";
  os << "\nparameters:\n";
  for (const auto& [name, t] : g.initializers)
    os << "  " << name << " " << shapeStr(t.shape()) << " "
       << (g.trainable.count(name) ? "trainable" : g.buffers.count(name) ? "buffer" : "constant") << "\n";
  os << "\nquantized by Quantization (quantize_op_types:";
  for (const auto& t : quant.quantize_op_types) os << " " << t;
  os << "):\n";
  for (const auto& q : qi.nodes)
    os << "  " << q.kind << " '" << q.node << "' "
       << (!q.weight.empty()        ? "weight " + q.weight
           : q.activation2.empty() ? "input " + q.activation
                                   : "inputs " + q.activation + ", " + q.activation2)
       << "\n";
  for (const auto& [n, why] : qi.skipped) os << "  (skipped '" << n << "': " << why << ")\n";
  os << "\npruned by UnstructurePrune (prune_params_type: null):\n";
  for (const auto& p : prune_default) os << "  " << p << "\n";
  os << "pruned by UnstructurePrune (prune_params_type: conv1x1_only):\n";
  for (const auto& p : prune_1x1) os << "  " << p << "\n";
  os << "\ndefault distillation nodes (teacher_<name> -> <name>):\n";
  for (const auto& n : distill) os << "  " << n << " " << shapeOf(n) << "\n";
  os << "\nproposed distillation nodes (the output of each resolution stage, then the model's"
     << " outputs; * = used by " << (configured.empty() ? "default" : cfg_path)
     << ";\nDistillation.node: [name, ...] pairs each with teacher_<name>):\n";
  for (const auto& n : proposals)
    os << "  " << (isUsed(n) ? "* " : "  ") << n << " " << shapeOf(n) << "\n";
  return os.str();
}

}  // namespace slim::train
