// buildDistillLoss: name resolution and validation first (nothing is added to
// the graph until every group checks out), then the loss nodes. Constants
// (alphas, task weight) are plain non-trainable initializers.
#include "trainer/compress/distill/distill_loss.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "trainer/compress/distill/distill_nodes.h"
#include "trainer/compress/distill/distill_ops.h"
#include "trainer/compress/distill/teacher_merge.h"
#include "trainer/config/suggest.h"
#include "trainer/graph/executor.h"

namespace slim::compress {
namespace {

constexpr size_t kClosest = 5;

bool isTeacherName(const std::string& n) { return n.rfind(kTeacherPrefix, 0) == 0; }

// Activation names of one side (student or teacher) for "closest" listings.
std::vector<std::string> candidates(const graph::Graph& g, bool teacher) {
  std::vector<std::string> out;
  for (const auto& n : g.tensorNames())
    if (!g.isInitializer(n) && isTeacherName(n) == teacher) out.push_back(n);
  return out;
}

// Every tensor's shape at batch 1 (dynamic dims -> 1), from one inference
// pass on zeros; declared shapes only when the graph does not run so. Only
// computed for an error message.
std::map<std::string, Shape> inferShapes(const graph::Graph& g) {
  std::map<std::string, Shape> shapes;
  for (const auto* list : {&g.inputs, &g.outputs})
    for (const auto& v : *list) shapes[v.name] = v.shape;
  graph::Graph run = g;  // shallow: the executor may annotate its graph
  try {
    graph::Executor ex(run, false);  // unfused: every node writes its own output
    std::map<std::string, Tensor> feeds;
    for (const auto& in : run.inputs) {
      Shape s = in.shape;
      for (auto& d : s) d = d < 0 ? 1 : d;
      feeds[in.name] = Tensor(s, in.dtype);
    }
    ops::RunContext ctx;
    ex.forward(feeds, ctx);
    for (const auto& name : run.tensorNames())
      if (ex.hasValue(name)) shapes[name] = ex.value(name).shape();
  } catch (const Error&) {
  }
  return shapes;
}

// Suggestions for a missing name: tensors with the shape the name should
// have first (its pair partner's when that exists, else the shape of the
// nearest name), nearest first, then the nearest others; each with its shape.
std::string suggest(const graph::Graph& g, const std::string& t, bool teacher,
                    const std::string& partner) {
  const auto cands = candidates(g, teacher);
  if (cands.empty())
    return teacher ? "; the graph has no teacher tensors (was the teacher merged?)"
                   : "; the graph has no student tensors";
  const auto by_distance = config::closestNames(t, cands, cands.size());
  const auto shapes = inferShapes(g);
  auto shapeOf = [&](const std::string& n) -> const Shape* {
    auto it = shapes.find(n);
    return it == shapes.end() ? nullptr : &it->second;
  };
  const Shape* want = shapeOf(partner);
  std::string ref = want ? "'" + partner + "'" : "";
  if (want == nullptr) {
    want = shapeOf(by_distance.front());
    ref = "the nearest name";
  }
  std::vector<std::string> order;
  if (want != nullptr)
    for (const auto& c : by_distance)
      if (const Shape* s = shapeOf(c); s != nullptr && *s == *want) order.push_back(c);
  const size_t same = order.size();
  for (const auto& c : by_distance)
    if (std::find(order.begin(), order.end(), c) == order.end()) order.push_back(c);
  order.resize(std::min(order.size(), kClosest));
  std::ostringstream os;
  os << "; closest";
  if (want != nullptr && same > 0) os << " (shaped " << shapeStr(*want) << " like " << ref << " first)";
  os << ": ";
  for (size_t i = 0; i < order.size(); ++i) {
    os << (i ? ", " : "") << order[i];
    if (const Shape* s = shapeOf(order[i])) os << " " << shapeStr(*s);
  }
  return os.str();
}

// `partner`: the other tensor of the pair (its shape ranks the suggestions);
// `where`: the config position of the name (file:line:column: key), else `key`.
void requireTensor(const graph::Graph& g, const std::set<std::string>& names,
                   const std::string& key, const std::string& t, bool teacher,
                   const std::string& partner = "", const std::string& where = "") {
  if (names.count(t)) return;
  SLIM_THROW(ConfigError, where.empty() ? key : where, ": tensor '", t, "' not found in the ",
             teacher ? "teacher" : "student", suggest(g, t, teacher, partner));
}

// Shape of `t` where the graph declares one (inputs, outputs, initializers).
bool knownShape(const graph::Graph& g, const std::string& t, Shape& s) {
  for (const auto* list : {&g.inputs, &g.outputs})
    for (const auto& v : *list)
      if (v.name == t) {
        s = v.shape;
        return true;
      }
  auto it = g.initializers.find(t);
  if (it == g.initializers.end()) return false;
  s = it->second.shape();
  return true;
}

void checkShapes(const graph::Graph& g, const config::DistillPair& p) {
  Shape ts, ss;
  if (!knownShape(g, p.teacher, ts) || !knownShape(g, p.student, ss)) return;
  bool ok = ts.size() == ss.size();
  for (size_t d = 0; ok && d < ts.size(); ++d)
    ok = ts[d] < 0 || ss[d] < 0 || ts[d] == ss[d];
  if (!ok)
    SLIM_THROW(ConfigError, "Distillation.node: pair (", p.teacher, ", ", p.student,
               ") has teacher shape ", shapeStr(ts), " but student shape ", shapeStr(ss),
               "; both tensors of a pair need the same shape");
}

const char* opTypeFor(const std::string& loss) {
  if (loss == "l2") return "DistillL2Loss";
  if (loss == "soft_label") return "SoftLabelLoss";
  SLIM_THROW(ConfigError, "Distillation.loss: '", loss,
             "' is not supported yet (supported: l2, soft_label)");
}

// Appends graph nodes; every output name is made unique against the graph.
class Builder {
 public:
  explicit Builder(graph::Graph& g) : g_(g) {}

  std::string node(const std::string& op, std::vector<std::string> inputs,
                   const std::string& base, ops::Attrs attrs = {},
                   const std::string& node_name = "") {
    const std::string out = g_.uniqueName(base);
    const std::string name = g_.uniqueName(node_name.empty() ? base + "_node" : node_name);
    g_.nodes.push_back(graph::Node{name, op, std::move(inputs), {out}, std::move(attrs)});
    return out;
  }
  // w * t (t itself when w == 1).
  std::string scale(const std::string& t, double w, const std::string& base) {
    if (w == 1.0) return t;
    const std::string c = g_.uniqueName(base + "_weight");
    g_.addInitializer(c, Tensor::scalar(static_cast<float>(w)));
    return node("Mul", {t, c}, base);
  }
  // Sum of the tensors (the only one when there is one).
  std::string sum(const std::vector<std::string>& ts, const std::string& base) {
    return ts.size() == 1 ? ts[0] : node("Sum", ts, base);
  }

 private:
  graph::Graph& g_;
};

}  // namespace

DistillLoss buildDistillLoss(graph::Graph& g, const config::Distillation& d,
                             const std::string& student_logits,
                             const std::string& label_input) {
  SLIM_ENFORCE(!d.groups.empty(), "Distillation: no node group");
  DistillLoss res;
  res.groups = d.groups;
  const std::set<std::string> names = g.tensorNames();
  // 1. Resolve automatic groups and validate every name, loss and shape.
  for (auto& grp : res.groups) {
    opTypeFor(grp.loss);
    if (grp.pairs.empty()) {
      const auto nodes = defaultDistillNodes(g);
      if (nodes.empty())
        SLIM_THROW(ConfigError, "Distillation.node: no weighted layer (Conv, Gemm, MatMul, "
                   "BatchNormalization, ...) found in the student model '", g.name,
                   "' to distil automatically; list the tensors in Distillation.node");
      for (const auto& n : nodes) grp.pairs.push_back({kTeacherPrefix + n, n});
    }
    for (const auto& p : grp.pairs) {
      requireTensor(g, names, "Distillation.node", p.student, false, p.teacher, p.student_where);
      requireTensor(g, names, "Distillation.node", p.teacher, true, p.student, p.teacher_where);
      checkShapes(g, p);
    }
  }
  if (!d.task_loss.empty()) {
    if (d.task_loss != "cross_entropy")
      SLIM_THROW(ConfigError, "Distillation.task_loss: '", d.task_loss,
                 "' is not supported (supported: cross_entropy)");
    requireTensor(g, names, "Distillation.task_loss (student logits)", student_logits, false);
    if (label_input.empty())
      SLIM_THROW(Error, "Distillation.task_loss: cross_entropy needs labels but the trainer "
                 "passed no label input name");
    for (const auto& v : g.inputs)
      if (v.name == label_input && v.dtype != DType::kI64)
        SLIM_THROW(ModelError, "label input '", label_input, "' is ", dtypeName(v.dtype),
                   "; the task loss needs int64 class labels");
    res.needs_labels = true;
    res.label_input = label_input;
  }

  // 2. Build the nodes.
  Builder b(g);
  std::map<std::string, std::vector<std::string>> per_type;
  std::vector<std::string> parts;
  for (size_t gi = 0; gi < res.groups.size(); ++gi) {
    const auto& grp = res.groups[gi];
    const std::string prefix = "distill_g" + std::to_string(gi);
    std::vector<std::string> terms;
    for (size_t pi = 0; pi < grp.pairs.size(); ++pi) {
      const auto& p = grp.pairs[pi];
      ops::Attrs attrs;
      if (grp.loss == "soft_label") attrs.set("temperature", static_cast<float>(d.temperature));
      DistillTerm t;
      t.label = grp.loss + ":" + p.teacher + "->" + p.student;
      // The node name carries the pair, so a kernel ShapeError names it.
      t.tensor = b.node(opTypeFor(grp.loss), {p.teacher, p.student},
                        prefix + "_" + grp.loss + "_" + std::to_string(pi), attrs,
                        "distill[" + t.label + "]");
      t.loss = grp.loss;
      t.group = gi;
      t.pair = p;
      terms.push_back(t.tensor);
      res.terms.push_back(std::move(t));
    }
    std::string gt = b.scale(b.sum(terms, prefix + "_sum"), grp.alpha, prefix + "_weighted");
    res.group_tensors.push_back(gt);
    per_type[grp.loss].push_back(gt);
    parts.push_back(gt);
  }
  for (const auto& kv : per_type)
    res.by_loss[kv.first] = b.sum(kv.second, "distill_" + kv.first + "_total");
  if (res.needs_labels) {
    if (!g.isInput(label_input)) g.inputs.push_back({label_input, {-1}, DType::kI64});
    const std::string ce =
        b.node("SoftmaxCrossEntropyLoss", {student_logits, label_input}, "distill_task_loss");
    res.task_tensor = b.scale(ce, d.task_loss_weight, "distill_task_weighted");
    res.by_loss["task"] = res.task_tensor;
    parts.push_back(res.task_tensor);
  }
  res.objective = b.node("Sum", parts, "distill_loss_total");
  g.outputs.push_back({res.objective, {}, DType::kF32});
  g.topoSort();
  return res;
}

std::vector<std::string> pairStrings(const DistillLoss& loss) {
  std::vector<std::string> out;
  for (const auto& grp : loss.groups)
    for (const auto& p : grp.pairs) out.push_back(p.teacher + "->" + p.student);
  return out;
}

}  // namespace slim::compress
