// Parsers for the compression sections: QuantAware/Quantization, Distillation,
// UnstructurePrune (act-reference §2.1-2.3), plus resolveGmp / quantTargets.
#include <cmath>

#include "trainer/config/schema.h"
#include "trainer/config/suggest.h"
#include "trainer/core/error.h"
#include "trainer/core/log.h"

namespace slim::config {
namespace detail {
namespace {

const std::vector<std::string> kPaddleOps = {"conv2d", "depthwise_conv2d", "conv2d_transpose",
                                             "mul", "matmul", "matmul_v2", "elementwise_add",
                                             "pool2d"};
const std::vector<std::string> kOnnxOps = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add",
                                           "MaxPool", "AveragePool", "GlobalAveragePool",
                                           "GlobalMaxPool"};

int64_t bits(const Node& n) {
  return n.i64In(kMinQuantBits, kMaxQuantBits, " (1 bit leaves no positive level)");
}

double unitRatio(const Node& n) {
  const double r = n.f64();
  if (!(r >= 0.0 && r < 1.0)) n.fail("expected a ratio in [0, 1), found " + n.str());
  return r;
}

std::string canonicalLoss(const Node& n) {
  const std::string s = n.str();
  if (s == "l2" || s == "l2_loss") return "l2";
  if (s == "soft_label" || s == "soft_label_loss") return "soft_label";
  if (s == "fsp" || s == "fsp_loss" || s == "dkd" || s == "skd" || s == "loss")
    n.fail("loss '" + s + "' is not supported yet (supported: l2, soft_label)");
  n.fail("expected a loss name (l2, soft_label, or the older l2_loss, soft_label_loss), found '" +
         s + "'" + didYouMean(s, {"l2", "soft_label", "l2_loss", "soft_label_loss"}));
}

// One node group: explicit alternating pairs if `explicit_pairs` or the first
// name carries the teacher_ prefix; otherwise student names.
std::vector<DistillPair> parseGroup(const Node& n, bool explicit_pairs) {
  const std::vector<Node> items = n.items();
  std::vector<std::string> names;
  for (const Node& it : items) names.push_back(it.str());
  if (names.empty()) n.fail("expected at least one node name, found an empty list");
  const std::string kPrefix = "teacher_";
  auto teacherNamed = [&](const std::string& s) { return s.rfind(kPrefix, 0) == 0; };
  std::vector<DistillPair> pairs;
  if (explicit_pairs || teacherNamed(names[0])) {
    if (names.size() % 2 != 0)
      n.fail("expected [teacher, student, teacher, student, ...] pairs (even length), found " +
             std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); i += 2) {
      if (!teacherNamed(names[i]))
        items[i].fail("teacher names need the 'teacher_' prefix, found '" + names[i] + "'");
      if (teacherNamed(names[i + 1]))
        items[i + 1].fail("expected a student name here, found teacher name '" + names[i + 1] + "'");
      pairs.push_back({names[i], names[i + 1], items[i].where() + ": " + items[i].path(),
                       items[i + 1].where() + ": " + items[i + 1].path()});
    }
  } else {
    for (size_t i = 0; i < names.size(); ++i) {
      if (teacherNamed(names[i]))
        items[i].fail("a list of student names cannot contain teacher name '" + names[i] +
                      "' (explicit pairs start with the teacher name)");
      const std::string at = items[i].where() + ": " + items[i].path();
      pairs.push_back({kPrefix + names[i], names[i], at, at});
    }
  }
  return pairs;
}

}  // namespace

QuantAware parseQuant(const Node& n) {
  QuantAware q;
  n.checkKeys(*knownKeysAt("QuantAware"));
  if (n.has("quantize_op_types")) {
    Node ops = n["quantize_op_types"];
    q.quantize_op_types = ops.strList(true);
    std::vector<std::string> known = kPaddleOps;
    known.insert(known.end(), kOnnxOps.begin(), kOnnxOps.end());
    for (size_t i = 0; i < q.quantize_op_types.size(); ++i) {
      const std::string& t = q.quantize_op_types[i];
      bool ok = false;
      for (const auto& k : known) ok = ok || k == t;
      if (!ok)
        (ops.isSeq() ? ops.items()[i] : ops)
            .fail("unknown quantize op type '" + t + "'" + didYouMean(t, known) +
                  "; known: conv2d, depthwise_conv2d, conv2d_transpose, mul, matmul, matmul_v2, "
                  "elementwise_add, pool2d, Conv, ConvTranspose, Gemm, MatMul, Add, MaxPool, "
                  "AveragePool, GlobalAveragePool, GlobalMaxPool");
    }
    if (q.quantize_op_types.empty()) ops.fail("expected at least one op type, found an empty list");
  }
  if (n.has("weight_bits")) q.weight_bits = bits(n["weight_bits"]);
  if (n.has("activation_bits")) q.activation_bits = bits(n["activation_bits"]);
  if (n.has("signed_input_weight_bits"))
    q.signed_input_weight_bits = bits(n["signed_input_weight_bits"]);
  if (n.has("not_quant_pattern")) q.not_quant_pattern = n["not_quant_pattern"].strList(true);
  if (n.has("use_pact")) q.use_pact = n["use_pact"].boolean();
  if (n.has("activation_quantize_type")) {
    Node a = n["activation_quantize_type"];
    if (a.isScalar() && a.str() == "channel_wise_abs_max")
      a.fail("channel_wise_abs_max is only valid for weights (use abs_max, range_abs_max or "
             "moving_average_abs_max)");
    q.activation_quantize_type = a.choice({"abs_max", "range_abs_max", "moving_average_abs_max"});
  }
  if (n.has("weight_quantize_type")) {
    Node w = n["weight_quantize_type"];
    if (w.isScalar() && (w.str() == "range_abs_max" || w.str() == "moving_average_abs_max"))
      w.fail("'" + w.str() + "' is not supported for weights (slimtrain recomputes weight scales "
             "from the current weights every step); use abs_max or channel_wise_abs_max");
    q.weight_quantize_type = w.choice({"abs_max", "channel_wise_abs_max"});
  }
  if (n.has("dtype")) q.dtype = n["dtype"].choice({"int8"});
  if (n.has("window_size")) q.window_size = n["window_size"].i64In(1, kMaxWindowSize);
  if (n.has("moving_rate")) {
    q.moving_rate = n["moving_rate"].f64();
    if (!(q.moving_rate > 0 && q.moving_rate < 1))
      n["moving_rate"].fail("expected a value in (0, 1), found " + n["moving_rate"].str());
  }
  if (n.has("for_tensorrt")) q.for_tensorrt = n["for_tensorrt"].boolean();
  if (n.has("onnx_format")) q.onnx_format = n["onnx_format"].boolean();
  if (n.has("is_full_quantize")) q.is_full_quantize = n["is_full_quantize"].boolean();
  if (q.for_tensorrt) {
    if (q.activation_quantize_type == "abs_max")
      n["activation_quantize_type"].fail("for_tensorrt needs range_abs_max or moving_average_abs_max");
    if (q.weight_quantize_type != "channel_wise_abs_max")
      n["weight_quantize_type"].fail("for_tensorrt needs channel_wise_abs_max");
  }
  return q;
}

Distillation parseDistillation(const Node& n) {
  Distillation d;
  n.checkKeys(*knownKeysAt("Distillation"));
  // Losses and weights (scalar or one per group).
  std::vector<std::string> losses = {"l2"};
  Node loss = aliased(n, "loss", "distill_loss");
  if (loss.present()) {
    losses.clear();
    if (loss.isSeq()) for (const Node& it : loss.items()) losses.push_back(canonicalLoss(it));
    else losses.push_back(canonicalLoss(loss));
    if (losses.empty()) loss.fail("expected at least one loss name, found an empty list");
  }
  std::vector<double> alphas = {1.0};
  Node alpha = aliased(n, "alpha", "distill_lambda");
  if (alpha.present()) {
    alphas = alpha.f64List(true);
    if (alphas.empty()) alpha.fail("expected at least one weight, found an empty list");
    for (double a : alphas)
      if (!(a >= 0)) alpha.fail("expected non-negative weights, found " + std::to_string(a));
  }
  // Node groups.
  Node node = aliased(n, "node", "distill_node_pair");
  const bool legacy = n.has("distill_node_pair");
  std::vector<std::vector<DistillPair>> groups;
  bool nested = false;
  if (node.present()) {
    if (node.isScalar()) node.fail("expected a list of node names, found " + node.found());
    const std::vector<Node> items = node.items();
    nested = !items.empty() && items[0].isSeq();
    if (nested) {
      for (const Node& g : items) {
        if (!g.isSeq()) g.fail("expected a list (all groups nested), found " + g.found());
        groups.push_back(parseGroup(g, legacy));
      }
    } else if (!items.empty()) {
      groups.push_back(parseGroup(node, legacy));
    }
  }
  const size_t n_groups = std::max<size_t>(groups.size(), 1);
  auto perGroup = [&](const Node& at, size_t count, const char* what) {
    if (count != 1 && count != n_groups)
      at.fail(std::string("expected one ") + what + " or one per node group (" +
              std::to_string(n_groups) + "), found " + std::to_string(count) +
              (nested ? "" : " (a list needs nested node groups)"));
  };
  perGroup(loss, losses.size(), "loss");
  perGroup(alpha, alphas.size(), "weight");
  d.groups.assign(n_groups, DistillGroup{});
  for (size_t g = 0; g < n_groups; ++g) {
    d.groups[g].loss = losses[losses.size() == 1 ? 0 : g];
    d.groups[g].alpha = alphas[alphas.size() == 1 ? 0 : g];
    if (g < groups.size()) d.groups[g].pairs = groups[g];
  }
  if (n.has("teacher_model_dir")) d.teacher_model_dir = n["teacher_model_dir"].str();
  if (n.has("teacher_model_filename")) d.teacher_model_filename = n["teacher_model_filename"].str();
  if (n.has("teacher_params_filename")) {
    d.teacher_params_filename = n["teacher_params_filename"].str();
    if (d.teacher_params_filename == "None") d.teacher_params_filename.clear();
  }
  if (n.has("merge_feed") && !n["merge_feed"].boolean())
    n["merge_feed"].fail("merge_feed: false is not supported: the teacher always reads the "
                         "student's inputs (remove the key or set it to true)");
  if (n.has("temperature")) {
    d.temperature = n["temperature"].f64();
    if (!(d.temperature > 0)) n["temperature"].fail("expected a positive number, found " + n["temperature"].str());
  }
  if (n.has("task_loss")) d.task_loss = n["task_loss"].choice({"cross_entropy"});
  if (n.has("task_loss_weight")) {
    if (d.task_loss.empty())
      n["task_loss_weight"].fail("task_loss_weight needs task_loss: cross_entropy");
    d.task_loss_weight = n["task_loss_weight"].f64();
    if (!(d.task_loss_weight >= 0)) n["task_loss_weight"].fail("expected >= 0, found " + n["task_loss_weight"].str());
  }
  return d;
}

UnstructurePrune parsePrune(const Node& n) {
  UnstructurePrune p;
  n.checkKeys(*knownKeysAt("UnstructurePrune"));
  auto noneOr = [](const Node& k, const std::vector<std::string>& allowed) -> std::string {
    if (!k.present()) return "";
    if (k.isScalar() && (k.str() == "None" || k.str() == "none")) return "";
    std::vector<std::string> all = allowed;
    all.push_back("none");
    const std::string v = k.choice(all);
    return v == "none" ? "" : v;
  };
  if (n["prune_strategy"].raw().IsDefined()) p.prune_strategy = noneOr(n["prune_strategy"], {"gmp"});
  if (n["prune_params_type"].raw().IsDefined())
    p.prune_params_type = noneOr(n["prune_params_type"], {"conv1x1_only"});
  if (n.has("prune_mode")) p.prune_mode = n["prune_mode"].choice({"ratio", "threshold"});
  Node ratio = aliased(n, "ratio", "pruned_ratio");
  if (ratio.present()) p.ratio = unitRatio(ratio);
  if (n.has("threshold")) {
    p.threshold = n["threshold"].f64();
    if (!(p.threshold >= 0)) n["threshold"].fail("expected >= 0, found " + n["threshold"].str());
  }
  if (n.has("local_sparsity")) p.local_sparsity = n["local_sparsity"].boolean();
  if (p.local_sparsity && p.prune_mode == "threshold" && p.prune_strategy != "gmp")
    n["local_sparsity"].fail("local_sparsity: true requires prune_mode: ratio");
  Node gc = n["gmp_config"];
  if (gc.present()) {
    gc.checkKeys(*knownKeysAt("UnstructurePrune.gmp_config"));
    if (p.prune_strategy != "gmp")
      log::warn(gc.where(), ": UnstructurePrune.gmp_config is ignored without prune_strategy: gmp");
    GmpConfig g;
    auto intAtLeast = [&](const char* key, int64_t lo, std::optional<int64_t>& out) {
      if (gc.has(key)) out = gc[key].i64In(lo, kMaxIterations);
    };
    intAtLeast("stable_iterations", 0, g.stable_iterations);
    intAtLeast("pruning_iterations", 1, g.pruning_iterations);
    intAtLeast("tunning_iterations", 0, g.tunning_iterations);
    intAtLeast("resume_iteration", -1, g.resume_iteration);
    intAtLeast("pruning_steps", 1, g.pruning_steps);
    if (gc.has("initial_ratio")) {
      g.initial_ratio = unitRatio(gc["initial_ratio"]);
      if (!(*g.initial_ratio < p.ratio))
        gc["initial_ratio"].fail(slim::detail::str("expected initial_ratio < ratio (", p.ratio,
                                                   "), found ", gc["initial_ratio"].str()));
    }
    if (g.pruning_iterations && g.pruning_steps &&
        !(static_cast<double>(*g.pruning_iterations) / static_cast<double>(*g.pruning_steps) > 10))
      gc["pruning_steps"].fail("pruning_iterations / pruning_steps must be > 10 (ACT's rule), found " +
                               std::to_string(*g.pruning_iterations) + " / " +
                               std::to_string(*g.pruning_steps));
    p.gmp_config = g;
  }
  return p;
}

}  // namespace detail

GmpSchedule resolveGmp(const UnstructurePrune& p, int64_t total_iters) {
  const GmpConfig g = p.gmp_config.value_or(GmpConfig{});
  const bool need_total = !g.pruning_iterations || !g.tunning_iterations || !g.pruning_steps;
  if (need_total && total_iters <= 0)
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config: the automatic schedule needs the total "
               "number of training iterations, found ", total_iters);
  const double t45 = 0.45 * static_cast<double>(total_iters);
  const int64_t auto_iters = std::max<int64_t>(static_cast<int64_t>(std::floor(t45)), 30);
  GmpSchedule s;
  s.stable_iterations = g.stable_iterations.value_or(0);
  s.pruning_iterations = g.pruning_iterations.value_or(auto_iters);
  s.tunning_iterations = g.tunning_iterations.value_or(auto_iters);
  s.resume_iteration = g.resume_iteration.value_or(-1);
  s.pruning_steps = g.pruning_steps.value_or(t45 > 1000 ? 100 : 1);
  s.initial_ratio = g.initial_ratio.value_or(0.15);
  // ACT checks its automatic pruning_iterations before flooring (0.45·T), so
  // e.g. T = 2223 passes with 1000.35 / 100 > 10.
  const double pruning_checked =
      g.pruning_iterations ? static_cast<double>(s.pruning_iterations) : std::max(t45, 30.0);
  if (!(pruning_checked / static_cast<double>(s.pruning_steps) > 10))
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config: pruning_iterations / pruning_steps must "
               "be > 10 (ACT's rule), found ", s.pruning_iterations, " / ", s.pruning_steps);
  if (!(s.initial_ratio < p.ratio))
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config.initial_ratio: expected < ratio (",
               p.ratio, "), found ", s.initial_ratio);
  return s;
}

QuantTargets quantTargets(const QuantAware& q) {
  QuantTargets t;
  if (q.is_full_quantize) return {true, true, true, true, true, true, true, true};
  std::vector<std::string> types = q.quantize_op_types;
  // ACT's TensorRT list less leaky_relu (not modelled).
  if (q.for_tensorrt) types = {"mul", "conv2d", "pool2d", "depthwise_conv2d", "elementwise_add"};
  for (const auto& s : types) {
    if (s == "conv2d") t.conv = true;
    if (s == "depthwise_conv2d") t.depthwise_conv = true;
    if (s == "Conv") t.conv = t.depthwise_conv = true;
    if (s == "conv2d_transpose" || s == "ConvTranspose") t.conv_transpose = true;
    if (s == "mul" || s == "matmul" || s == "matmul_v2") t.gemm = t.matmul = true;
    if (s == "matmul" || s == "matmul_v2" || s == "MatMul") t.matmul = t.matmul_act = true;
    if (s == "Gemm") t.gemm = true;
    if (s == "elementwise_add" || s == "Add") t.add = true;
    if (s == "pool2d" || s == "MaxPool" || s == "AveragePool" || s == "GlobalAveragePool" ||
        s == "GlobalMaxPool")
      t.pool = true;
  }
  return t;
}

}  // namespace slim::config
