// insertQat / describeQat (see qat_pass.h). The pass walks the nodes once in
// graph order and emits each new quantizer right before its first consumer,
// so the rewritten node list stays topologically sorted.
#include "trainer/compress/quant/qat_pass.h"

#include <map>
#include <set>
#include <sstream>

#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {
namespace {

using graph::Graph;
using graph::Node;

void validate(const config::QuantAware& q) {
  const std::string& w = q.weight_quantize_type;
  if (w != "abs_max" && w != "channel_wise_abs_max")
    SLIM_THROW(ConfigError, "QuantAware.weight_quantize_type: expected abs_max or "
               "channel_wise_abs_max, found '", w, "' (slimtrain recomputes weight scales "
               "from the current weights every step; range_abs_max / moving_average_abs_max "
               "for weights are not supported)");
  const std::string& a = q.activation_quantize_type;
  if (a == "channel_wise_abs_max")
    SLIM_THROW(ConfigError, "QuantAware.activation_quantize_type: channel_wise_abs_max is "
               "for weights only; use abs_max, range_abs_max or moving_average_abs_max");
  if (a != "abs_max" && a != "range_abs_max" && a != "moving_average_abs_max")
    SLIM_THROW(ConfigError, "QuantAware.activation_quantize_type: expected abs_max, "
               "range_abs_max or moving_average_abs_max, found '", a, "'");
  // The quantize types above are rejected at parse time as well (kept as
  // ConfigError for configs built in code). Bits, window size and moving
  // rate are range-checked at parse time (config.h kMinQuantBits..
  // kMaxQuantBits, kMaxWindowSize, with file, line and the section as
  // written): a parsed config never trips these invariants.
  for (auto [key, b] : {std::pair{"weight_bits", q.weight_bits},
                        std::pair{"activation_bits", q.activation_bits},
                        std::pair{"signed_input_weight_bits",
                                  q.signed_input_weight_bits ? q.signed_input_weight_bits : 8}})
    SLIM_ENFORCE(b >= config::kMinQuantBits && b <= config::kMaxQuantBits, key, " = ", b,
                 " outside the parse-time range");
  if (a == "range_abs_max")
    SLIM_ENFORCE(q.window_size >= 1 && q.window_size <= config::kMaxWindowSize,
                 "window_size = ", q.window_size, " outside the parse-time range");
  if (a == "moving_average_abs_max")
    SLIM_ENFORCE(q.moving_rate > 0.0 && q.moving_rate < 1.0, "moving_rate = ", q.moving_rate,
                 " outside the parse-time range");
}

// True when x is produced by a chain of Relu / Clip nodes one of which clips
// at >= 0 (the chains the QDQ export gives zero point 0): the quantized op
// reading x sees no negative input.
bool nonNegative(const Graph& g, const std::string& x) {
  for (int p = g.producer(x); p >= 0;) {
    const Node& c = g.nodes[static_cast<size_t>(p)];
    if (c.op_type == "Relu") return true;
    if (c.op_type != "Clip") return false;
    float lo, hi;  // the opset >= 11 form only, as the export's integer Clip
    if (!c.attrs.has("min") && g.constantClipBounds(c, lo, hi) && lo >= 0.f) return true;
    p = g.producer(c.inputs[0]);
  }
  return false;
}

bool startsWith(const std::string& s, const std::string& p) {
  return !p.empty() && s.compare(0, p.size(), p) == 0;
}

// What a node would be quantized as; kind "" = not a candidate.
struct Candidate {
  std::string kind;
  int axis = 0;  // channel axis of the weight; -1: per tensor only
  std::string why_not;  // a selected kind that cannot be quantized
  bool act_only = false;  // activation-only: every input gets an EMA quantizer
};

Candidate classify(const Graph& g, const Node& nd, const config::QuantTargets& t) {
  Candidate c;
  const bool conv = nd.op_type == "Conv", convt = nd.op_type == "ConvTranspose";
  const bool gemm = nd.op_type == "Gemm", matmul = nd.op_type == "MatMul";
  if (nd.op_type == "Add" && t.add) {
    c.kind = "elementwise_add";
    c.act_only = true;
    for (const auto& in : nd.inputs)
      if (in.empty() || g.isInitializer(in)) {
        c.kind = "?";
        c.why_not = "input '" + in + "' is a constant (activation-only ops need two activations)";
      }
    if (nd.inputs.size() != 2) c = Candidate{"?", 0, "Add without two inputs"};
    return c;
  }
  const bool pool = nd.op_type == "MaxPool" || nd.op_type == "AveragePool" ||
                    nd.op_type == "GlobalAveragePool" || nd.op_type == "GlobalMaxPool";
  if (pool && t.pool) {
    c.kind = "pool2d";
    c.act_only = true;
    if (nd.inputs.empty() || nd.inputs[0].empty() || g.isInitializer(nd.inputs[0]))
      c = Candidate{"?", 0, "input is not an activation"};
    return c;
  }
  if (!((conv && (t.conv || t.depthwise_conv)) || (convt && t.conv_transpose) ||
        (gemm && t.gemm) || (matmul && t.matmul)))
    return c;
  const std::string w = nd.inputs.size() > 1 ? nd.inputs[1] : "";
  // MatMul of two activations (attention's Q.K^T and attn.V): Paddle's
  // quant-dequant pass gives both inputs an EMA quantizer, no PACT
  // (act-reference §4.1: matmul / matmul_v2 are activation ops too; Paddle's
  // mul always has a weight, so it does not select them).
  const std::string a = nd.inputs.empty() ? "" : nd.inputs[0];
  if (matmul && !w.empty() && !g.isInitializer(w) && !a.empty() && !g.isInitializer(a)) {
    if (!t.matmul_act)
      return Candidate{"?", 0, "MatMul of two activations: selected by matmul, matmul_v2 or "
                       "MatMul in quantize_op_types, not by mul (a weight op in Paddle)"};
    c.kind = "matmul";
    c.act_only = true;
    return c;
  }
  if (w.empty() || !g.isInitializer(w)) {
    c.kind = "?";
    c.why_not = matmul ? "first input is a constant and the second an activation (a weight "
                         "must be the second input)"
                       : "weight '" + w + "' is not an initializer";
    return c;
  }
  const Tensor& wt = g.initializers.at(w);
  if (conv || convt) {
    if (wt.ndim() < 3) SLIM_THROW(ModelError, "node '", nd.name, "' (", nd.op_type,
                                  "): weight '", w, "' has shape ", shapeStr(wt.shape()));
    if (convt) {
      c.kind = "conv2d_transpose";
      c.axis = 1;
      return c;
    }
    // W: (M, C/g, kh, kw); depthwise = one input channel per group (Paddle).
    const int64_t grp = nd.attrs.getInt("group", 1), M = wt.dim(0);
    const bool dw = grp > 1 && wt.dim(1) == 1 && M % grp == 0;
    if ((dw && !t.depthwise_conv) || (!dw && !t.conv)) return Candidate{};
    c.kind = dw ? "depthwise_conv2d" : "conv2d";
    c.axis = 0;
    return c;
  }
  if (gemm) {
    if (wt.ndim() != 2) SLIM_THROW(ModelError, "node '", nd.name, "' (Gemm): weight '", w,
                                   "' must be 2-D, has shape ", shapeStr(wt.shape()));
    c.kind = "mul";
    c.axis = nd.attrs.getInt("transB", 0) != 0 ? 0 : 1;  // output (N) axis
    return c;
  }
  c.kind = "matmul";
  c.axis = wt.ndim() >= 2 ? wt.ndim() - 1 : -1;  // W: (..., K, N)
  return c;
}

// True when the QDQ export stores node nd's bias as int32 (qdq_build.cc):
// a Conv (not transposed) or a Gemm with alpha = beta = 1 whose bias is a
// 1-D initializer with one value per output channel.
bool intBias(const Graph& g, const Node& nd, const Candidate& c) {
  if (c.kind != "conv2d" && c.kind != "depthwise_conv2d" && c.kind != "mul") return false;
  if (nd.inputs.size() < 3 || nd.inputs[2].empty() || !g.isInitializer(nd.inputs[2])) return false;
  if (c.kind == "mul" &&
      (nd.attrs.getFloat("alpha", 1.f) != 1.f || nd.attrs.getFloat("beta", 1.f) != 1.f))
    return false;
  const Tensor& w = g.initializers.at(nd.inputs[1]);
  const Tensor& b = g.initializers.at(nd.inputs[2]);
  const int64_t cout = c.kind == "mul" ? w.dim(c.axis) : w.dim(0);
  return b.ndim() == 1 && b.numel() == cout && b.dtype() == DType::kF32;
}

std::string skipReason(const Node& nd, const config::QuantAware& q, const QatOptions& o) {
  if (startsWith(nd.name, o.teacher_prefix)) return "teacher node";
  for (const auto& in : nd.inputs)
    if (startsWith(in, o.teacher_prefix)) return "reads teacher tensor '" + in + "'";
  for (const auto& p : q.not_quant_pattern)
    if (nd.name.find(p) != std::string::npos) return "name matches not_quant_pattern '" + p + "'";
  return "";
}

// Builds new nodes and buffers; names are kept unique against the whole graph.
class Builder {
 public:
  Builder(Graph& g, const config::QuantAware& q, bool pact, QatInfo& info)
      : g_(g), q_(q), pact_(pact), info_(info), used_(g.tensorNames()) {
    for (const auto& n : g.nodes) used_.insert(n.name);
  }

  // The quantized weight tensor for `w` at `axis` with `bits`, emitting its
  // node into out (a weight read by several ops: the first one's bits).
  std::string weight(const std::string& w, int axis, int bits, std::vector<Node>& out) {
    const bool per_channel = q_.weight_quantize_type == "channel_wise_abs_max" && axis >= 0;
    const int ax = per_channel ? axis : -1;
    auto key = std::make_pair(w, ax);
    auto it = weights_.find(key);
    if (it != weights_.end()) return info_.weights[it->second].quantized;
    const Tensor& wt = g_.initializers.at(w);
    WeightQuant wq;
    wq.param = w;
    wq.mode = per_channel ? "channel_wise_abs_max" : "abs_max";
    wq.axis = ax;
    wq.scale = unique(w + ".quant_scale");
    wq.quantized = unique(w + ".quantized.dequantized");
    wq.node = unique(w + ".fake_quant");
    wq.bits = bits;
    Tensor s;
    if (per_channel) {
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < ax; ++d) outer *= wt.dim(d);
      for (int d = ax + 1; d < wt.ndim(); ++d) inner *= wt.dim(d);
      s = Tensor({wt.dim(ax)});
      channelAbsMax(wt.f32(), outer, wt.dim(ax), inner, s.f32());
    } else {
      s = Tensor::fromVector({1}, {absMax(wt.f32(), wt.numel())});
    }
    g_.addInitializer(wq.scale, s, false, true);
    Node n{wq.node, kFakeQuantWeightOp, {w, wq.scale}, {wq.quantized}, {}};
    n.attrs.set("bits", int64_t{bits});
    n.attrs.set("mode", wq.mode);
    n.attrs.set("axis", int64_t{ax < 0 ? 0 : ax});
    out.push_back(std::move(n));
    weights_[key] = info_.weights.size();
    info_.weights.push_back(std::move(wq));
    return info_.weights.back().quantized;
  }

  // The quantized activation tensor for `x` (optional Pact + FakeQuantAct).
  // An input of a weight op gets activation_quantize_type and PACT when
  // enabled, one of an activation-only op an EMA quantizer (Paddle's
  // AddQuantDequantPass); an existing quantizer of x is reused either way.
  std::string activation(const std::string& x, std::vector<Node>& out, bool weight_op = true) {
    auto it = acts_.find(x);
    if (it != acts_.end()) return info_.activations[it->second].quantized;
    ActQuant aq;
    aq.tensor = x;
    aq.mode = weight_op ? q_.activation_quantize_type : "moving_average_abs_max";
    std::string src = x;
    if (pact_ && weight_op) {
      aq.pact_alpha = unique(x + "_tmp_input_pact");
      g_.addInitializer(aq.pact_alpha, Tensor::fromVector({1}, {kPactInitAlpha}), true, false);
      const std::string clipped = unique(x + ".pact");
      out.push_back(Node{unique(x + ".pact_clip"), kPactOp, {x, aq.pact_alpha}, {clipped}, {}});
      info_.pact_alphas.push_back(aq.pact_alpha);
      src = clipped;
    }
    aq.scale = unique(x + ".act_scale");
    g_.addInitializer(aq.scale, Tensor::fromVector({1}, {kActScaleInit}), false, true);
    if (aq.mode == "moving_average_abs_max") {
      aq.state = {unique(x + ".act_state"), unique(x + ".act_accum")};
      for (const auto& s : aq.state)
        g_.addInitializer(s, Tensor::fromVector({1}, {kEmaInit}), false, true);
    } else if (aq.mode == "range_abs_max") {
      aq.state = {unique(x + ".act_window"), unique(x + ".act_counter")};
      g_.addInitializer(aq.state[0], Tensor({q_.window_size}), false, true);
      g_.addInitializer(aq.state[1], Tensor({1}), false, true);
    }
    aq.quantized = unique(x + ".quantized.dequantized");
    aq.node = unique(x + ".fake_quant");
    Node n{aq.node, kFakeQuantActOp, {src, aq.scale}, {aq.quantized}, {}};
    for (const auto& s : aq.state) n.inputs.push_back(s);
    n.attrs.set("bits", q_.activation_bits);
    n.attrs.set("mode", aq.mode);
    n.attrs.set("moving_rate", static_cast<float>(q_.moving_rate));
    n.attrs.set("window_size", q_.window_size);
    out.push_back(std::move(n));
    acts_[x] = info_.activations.size();
    info_.activations.push_back(std::move(aq));
    return info_.activations.back().quantized;
  }

  // The fake-quantized bias `b` of a node reading weight quantizer `wq_out`
  // and activation quantizer `x_q` (both built by this Builder), emitting
  // its FakeQuantBias into out.
  std::string bias(const std::string& b, const std::string& wq_out, const std::string& x_q,
                   std::vector<Node>& out) {
    const WeightQuant* wq = nullptr;
    for (const auto& w : info_.weights)
      if (w.quantized == wq_out) wq = &w;
    const ActQuant* aq = nullptr;
    for (const auto& a : info_.activations)
      if (a.quantized == x_q) aq = &a;
    SLIM_ENFORCE(wq && aq, "QAT pass: quantizers of '", wq_out, "' / '", x_q, "' not found");
    const std::string y = unique(b + ".quantized.dequantized");
    Node n{unique(b + ".fake_quant"), kFakeQuantBiasOp, {b, wq->param, aq->scale}, {y}, {}};
    n.attrs.set("activation_bits", q_.activation_bits);
    n.attrs.set("bits", int64_t{wq->bits});
    n.attrs.set("mode", wq->mode);
    n.attrs.set("axis", int64_t{wq->axis < 0 ? 0 : wq->axis});
    out.push_back(std::move(n));
    return y;
  }

 private:
  std::string unique(const std::string& base) {
    std::string n = base;
    for (int i = 1; used_.count(n); ++i) n = base + "_" + std::to_string(i);
    used_.insert(n);
    return n;
  }

  Graph& g_;
  const config::QuantAware& q_;
  bool pact_;
  QatInfo& info_;
  std::set<std::string> used_;
  std::map<std::pair<std::string, int>, size_t> weights_;
  std::map<std::string, size_t> acts_;
};

}  // namespace

QatInfo insertQat(graph::Graph& g, const config::QuantAware& q, const QatOptions& opts) {
  validate(q);
  const config::QuantTargets targets = config::quantTargets(q);
  QatInfo info;
  info.weight_bits = static_cast<int>(q.weight_bits);
  info.activation_bits = static_cast<int>(q.activation_bits);
  Builder b(g, q, q.use_pact && opts.allow_pact, info);
  std::vector<Node> out, biases;  // biases: FakeQuantBias nodes, placed first
  out.reserve(g.nodes.size() * 2);
  for (Node nd : g.nodes) {
    const Candidate c =
        opts.objective_nodes.count(nd.name) ? Candidate{} : classify(g, nd, targets);
    const std::string why =
        c.kind.empty() ? "" : (c.why_not.empty() ? skipReason(nd, q, opts) : c.why_not);
    if (c.kind.empty() || !why.empty()) {
      if (!why.empty()) info.skipped.emplace_back(nd.name, why);
      out.push_back(std::move(nd));
      continue;
    }
    if (c.act_only) {  // elementwise_add, pool2d, matmul of two activations
      const int n_in = c.kind == "pool2d" ? 1 : 2;
      QuantizedNode qn{nd.name, c.kind, "", nd.inputs[0], n_in > 1 ? nd.inputs[1] : "", ""};
      for (int k = 0; k < n_in; ++k) nd.inputs[k] = b.activation(nd.inputs[k], out, false);
      info.nodes.push_back(std::move(qn));
      out.push_back(std::move(nd));
      continue;
    }
    QuantizedNode qn{nd.name, c.kind, nd.inputs[1], "", "", ""};
    const std::string& x = nd.inputs[0];
    const bool signed_input = !x.empty() && !g.isInitializer(x) && !nonNegative(g, x);
    const int64_t bits = signed_input && q.signed_input_weight_bits ? q.signed_input_weight_bits
                                                                    : q.weight_bits;
    const bool int_bias = intBias(g, nd, c);
    nd.inputs[1] = b.weight(nd.inputs[1], c.axis, static_cast<int>(bits), out);
    if (!x.empty() && !g.isInitializer(x)) {
      qn.activation = x;
      nd.inputs[0] = b.activation(x, out);
      if (int_bias) {
        qn.bias = nd.inputs[2];
        nd.inputs[2] = b.bias(nd.inputs[2], nd.inputs[1], nd.inputs[0], biases);
      }
    }
    info.nodes.push_back(std::move(qn));
    out.push_back(std::move(nd));
  }
  out.insert(out.begin(), biases.begin(), biases.end());
  g.nodes = std::move(out);
  g.topoSort();
  return info;
}

std::vector<std::string> QatInfo::nodeNames() const {
  std::vector<std::string> v;
  for (const auto& n : nodes) v.push_back(n.node);
  return v;
}

const WeightQuant* QatInfo::findWeight(const std::string& param) const {
  for (const auto& w : weights)
    if (w.param == param) return &w;
  return nullptr;
}

const ActQuant* QatInfo::findActivation(const std::string& tensor) const {
  for (const auto& a : activations)
    if (a.tensor == tensor) return &a;
  return nullptr;
}

std::vector<std::string> QatInfo::bufferNames() const {
  std::vector<std::string> v;
  for (const auto& w : weights) v.push_back(w.scale);
  for (const auto& a : activations) {
    v.push_back(a.scale);
    v.insert(v.end(), a.state.begin(), a.state.end());
  }
  return v;
}

std::string describeQat(const QatInfo& info) {
  std::ostringstream os;
  const char* sep = "";
  auto input = [&](const std::string& t) {
    if (const ActQuant* a = info.findActivation(t))
      os << a->tensor << " " << (a->pact_alpha.empty() ? "" : "pact+") << a->mode << " int"
         << info.activation_bits;
  };
  for (const auto& n : info.nodes) {
    os << sep << n.kind << " " << n.node << ": ";
    sep = "\n";
    if (n.weight.empty()) {
      os << (n.activation2.empty() ? "input " : "inputs ");
      input(n.activation);
      if (!n.activation2.empty()) {
        os << ", ";
        input(n.activation2);
      }
      continue;
    }
    os << "weight " << n.weight;
    if (const WeightQuant* w = info.findWeight(n.weight)) {
      os << " " << w->mode;
      if (w->axis >= 0) os << " axis " << w->axis;
      os << " int" << w->bits;
    }
    if (info.findActivation(n.activation)) {
      os << ", input ";
      input(n.activation);
    }
  }
  for (const auto& [node, why] : info.skipped) {
    os << sep << "not quantized " << node << ": " << why;
    sep = "\n";
  }
  return os.str();
}

}  // namespace slim::compress
