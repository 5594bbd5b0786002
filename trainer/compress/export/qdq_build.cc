// buildQdqGraph (qdq_export.h): rewrites the extracted student in place.
// Order: drop Pact; give every activation quantizer its step; turn each
// quantized op's weight (and folded BN, bias) into integer initializers read
// through DequantizeLinear; add exact output Q/DQ; finally replace the
// FakeQuantAct nodes by Q/DQ pairs and drop what nothing reads any more.
#include <algorithm>
#include <limits>
#include <cmath>
#include <map>

#include "trainer/compress/export/export_detail.h"
#include "trainer/compress/export/qdq_export.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/core/log.h"

namespace slim::compress {
namespace {

using graph::Graph;
using graph::Node;

constexpr int kActZeroPoint = 128;  // uint8 grid == symmetric int8 grid + 128

// One activation quantizer of the exported graph.
struct ActStep {
  std::string step_name;  // scalar float initializer: s / bin
  float step = 0.f;
};

// Integer weight of one quantized op: q (int8, shape of W) and its steps,
// one per slice along `axis` (axis -1: one step for the whole tensor).
struct IntWeight {
  Tensor q;
  std::vector<float> steps;
  int axis = -1;
};

bool isOutput(const Graph& g, const std::string& t) {
  return std::any_of(g.outputs.begin(), g.outputs.end(),
                     [&](const auto& o) { return o.name == t; });
}

int findNode(const Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return static_cast<int>(i);
  return -1;
}

// Shape (outer, C, inner) of W around `axis`.
void split(const Tensor& w, int axis, int64_t& outer, int64_t& C, int64_t& inner) {
  outer = inner = 1;
  for (int d = 0; d < axis; ++d) outer *= w.dim(d);
  C = w.dim(axis);
  for (int d = axis + 1; d < w.ndim(); ++d) inner *= w.dim(d);
}

// Quantizes W exactly as FakeQuantWeight's inference forward does (scales
// recomputed from the current weights).
IntWeight quantizeWeight(const Tensor& w, const WeightQuant& wq, int bits) {
  IntWeight r;
  r.q = Tensor(w.shape(), DType::kI8);
  r.axis = wq.mode == "channel_wise_abs_max" ? wq.axis : -1;
  int64_t outer = 1, C = 1, inner = w.numel();
  std::vector<float> s(1, 0.f);
  if (r.axis >= 0) {
    split(w, r.axis, outer, C, inner);
    s.resize(static_cast<size_t>(C));
    channelAbsMax(w.f32(), outer, C, inner, s.data());
  } else {
    s[0] = absMax(w.f32(), w.numel());
  }
  for (float v : s) r.steps.push_back(quantStep(v, bits));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (o * C + c) * inner + i;
        const float st = r.steps[static_cast<size_t>(c)];
        r.q.data<int8_t>()[k] =
            st > 0.f ? static_cast<int8_t>(quantizeValue(w.f32()[k], st, bits)) : int8_t{0};
      }
  return r;
}

// Output channels of a quantized op from its weight's shape: Conv (M, C/g,
// ...), ConvTranspose (C, M/g, ...), Gemm (N, K) with transB else (K, N),
// MatMul (..., K, N).
int64_t outputChannels(const Node& nd, const Tensor& w) {
  if (nd.op_type == "Conv") return w.dim(0);
  if (nd.op_type == "ConvTranspose") return w.dim(1) * nd.attrs.getInt("group", 1);
  if (nd.op_type == "Gemm") return w.dim(nd.attrs.getInt("transB", 0) != 0 ? 0 : 1);
  return w.dim(w.ndim() - 1);
}

// Per-tensor steps expanded to one per output channel (axis 0), for folding.
void perChannel(IntWeight& w) {
  if (w.axis == 0) return;
  SLIM_ENFORCE(w.axis < 0, "BN folding needs weights quantized along axis 0, got axis ", w.axis);
  w.steps.assign(static_cast<size_t>(w.q.dim(0)), w.steps[0]);
  w.axis = 0;
}

class QdqBuilder {
 public:
  QdqBuilder(Graph& g, const QatInfo& qat, const QdqOptions& o) : g_(g), qat_(qat), opts_(o) {}

  void run() {
    detail::bypassNodes(g_, kPactOp);
    // The int32 bias is computed below from the float bias the simulation
    // rounds (FakeQuantBias), with the same numerics.h functions.
    detail::bypassNodes(g_, kFakeQuantBiasOp);
    Tensor zp(Shape{}, DType::kU8);
    zp.data<uint8_t>()[0] = static_cast<uint8_t>(kActZeroPoint);
    zp_name_ = g_.uniqueName("qdq_zero_point");
    g_.addInitializer(zp_name_, zp);
    zp0_name_ = addInit("qdq_zero_point_0", Tensor(Shape{}, DType::kU8));
    for (const auto& aq : qat_.activations) addActStep(aq);
    std::vector<std::string> quantized_outputs;
    for (const auto& qn : qat_.nodes) {
      const int i = findNode(g_, qn.node);
      if (i < 0) continue;  // not part of the student's outputs
      quantized_outputs.push_back(qn.weight.empty()  // activation-only: inputs only
                                      ? g_.nodes[static_cast<size_t>(i)].outputs[0]
                                      : rewriteQuantizedNode(static_cast<size_t>(i), qn));
    }
    if (opts_.compact_batch_norm) detail::compactBatchNorms(g_);
    if (opts_.quantize_outputs)
      for (const auto& y : quantized_outputs) addOutputQdq(y);
    replaceActQuantizers();
    if (opts_.uint8_weights)
      detail::uint8WeightsForSignedInputs(g_, weight_dqs_, zp_name_, zp0_name_);
    g_.topoSort();
    g_.pruneUnused();
    g_.trainable.clear();
    g_.buffers.clear();
    g_.validate();
  }

 private:
  void addActStep(const ActQuant& aq) {
    const int i = findNode(g_, aq.node);
    if (i < 0) return;
    const Tensor& s = g_.initializers.at(aq.scale);
    if (aq.mode == "abs_max")
      log::warn("QDQ export: activation quantizer of '", aq.tensor, "' is abs_max (dynamic "
                "batch abs-max at inference); exporting its last stored scale ", s.f32()[0]);
    const float step = exportActivationStep(s.f32()[0], qat_.activation_bits);
    if (!(quantStep(s.f32()[0], qat_.activation_bits) > 0.f))
      log::warn("QDQ export: activation scale of '", aq.tensor, "' is ", s.f32()[0],
                "; using the smallest positive step (training outputs zeros there)");
    ActStep a{g_.uniqueName(aq.tensor + ".qdq_step"), step};
    g_.addInitializer(a.step_name, Tensor::scalar(step));
    by_output_[aq.quantized] = a;
  }

  const ActStep& step(const Node& fq) const {
    auto it = by_output_.find(fq.outputs[0]);
    SLIM_ENFORCE(it != by_output_.end(), "QDQ export: activation quantizer node '", fq.name,
                 "' is not listed in the QatInfo passed in");
    return it->second;
  }

  std::string addInit(const std::string& base, Tensor t) {
    const std::string n = g_.uniqueName(base);
    g_.addInitializer(n, std::move(t));
    return n;
  }

  Node makeNode(const std::string& base, const std::string& op, std::vector<std::string> in,
                std::vector<std::string> out) {
    std::string n = base;
    for (int k = 1; findNode(g_, n) >= 0 || std::count(new_names_.begin(), new_names_.end(), n);
         ++k)
      n = base + "_" + std::to_string(k);
    new_names_.push_back(n);
    return Node{n, op, std::move(in), std::move(out), {}};
  }

  // Index of the BatchNormalization to fold into Conv node `i`, or -1.
  int foldableBn(size_t i) const {
    const Node& nd = g_.nodes[i];
    if (!opts_.fold_batch_norm || nd.op_type != "Conv" || isOutput(g_, nd.outputs[0])) return -1;
    const auto cons = g_.consumers(nd.outputs[0]);
    if (cons.size() != 1) return -1;
    const Node& bn = g_.nodes[static_cast<size_t>(cons[0])];
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() != 5 ||
        bn.inputs[0] != nd.outputs[0])
      return -1;
    for (size_t k = 1; k < bn.outputs.size(); ++k)
      if (!bn.outputs[k].empty() && !g_.consumers(bn.outputs[k]).empty()) return -1;
    for (size_t k = 1; k < 5; ++k)
      if (!g_.isInitializer(bn.inputs[k])) return -1;
    return cons[0];
  }

  // Rewrites node i; returns the tensor holding its (folded) output.
  std::string rewriteQuantizedNode(size_t i, const QuantizedNode& qn) {
    Node nd = g_.nodes[i];
    const WeightQuant* wq = qat_.findWeight(qn.weight);
    SLIM_ENFORCE(wq != nullptr && nd.inputs.size() > 1 && nd.inputs[1] == wq->quantized,
                 "QDQ export: node '", nd.name, "' does not read the quantizer of weight '",
                 qn.weight, "'");
    SLIM_ENFORCE(wq->bits <= 8, "QDQ export: ", wq->bits, "-bit weights do not fit int8 (node '",
                 nd.name, "')");
    IntWeight w = quantizeWeight(g_.initializers.at(wq->param), *wq, wq->bits);
    const int64_t cout = outputChannels(nd, w.q);
    // Bias as float, per output channel (empty: none).
    std::vector<double> bias;
    const bool has_bias = nd.inputs.size() > 2 && !nd.inputs[2].empty();
    bool bias_vector = false;
    if (has_bias && g_.isInitializer(nd.inputs[2])) {
      const Tensor& b = g_.initializers.at(nd.inputs[2]);
      bias_vector = b.numel() == cout && b.ndim() == 1;
      if (bias_vector) bias.assign(b.f32(), b.f32() + cout);
    }
    const int bn = has_bias && !bias_vector ? -1 : foldableBn(i);  // fold needs a [C] bias
    if (bn >= 0) {
      const Node bnn = g_.nodes[static_cast<size_t>(bn)];
      foldBatchNorm(w, bnn, has_bias ? &bias : nullptr, bias);
      if (!has_bias) bias_vector = true;
      nd.outputs[0] = bnn.outputs[0];
      g_.nodes.erase(g_.nodes.begin() + bn);  // bn > i: index i stays valid
    }
    // Weight -> int8 initializer + DequantizeLinear (uint8 later, where the
    // input is signed: detail::uint8WeightsForSignedInputs).
    Tensor steps = w.axis >= 0 ? Tensor({static_cast<int64_t>(w.steps.size())}) : Tensor(Shape{});
    for (size_t c = 0; c < w.steps.size(); ++c)
      steps.f32()[c] = w.steps[c] > 0.f ? w.steps[c] : 1.f;  // zero channel: q = 0 anyway
    const std::string ws_name = addInit(nd.name + ".weight_step", steps);
    const std::string wdq = g_.uniqueName(nd.name + ".weight_dq");
    Node dqw = makeNode(nd.name + ".weight_DequantizeLinear", "DequantizeLinear",
                        {addInit(nd.name + ".weight_int8", w.q), ws_name}, {wdq});
    weight_dqs_.push_back(dqw.name);
    if (w.axis >= 0) dqw.attrs.set("axis", static_cast<int64_t>(w.axis));
    nd.inputs[1] = wdq;
    std::vector<Node> pre{dqw};
    // Bias: int32 on step_x * step_w[c] where the input is quantized.
    const auto xs = by_output_.find(nd.inputs[0]);
    const bool gemm_ok = nd.op_type != "Gemm" || (nd.attrs.getFloat("alpha", 1.f) == 1.f &&
                                                  nd.attrs.getFloat("beta", 1.f) == 1.f);
    if (bn >= 0 || (has_bias && bias_vector)) {
      if (nd.inputs.size() < 3) nd.inputs.resize(3);
      const bool int_bias = opts_.int32_bias && xs != by_output_.end() && gemm_ok &&
                            nd.op_type != "ConvTranspose" && nd.op_type != "MatMul";
      if (int_bias) {
        nd.inputs[2] = int32Bias(nd.name, bias, xs->second, steps, ws_name, pre);
      } else {
        // A bias the simulation rounds (FakeQuantBias) keeps its rounded
        // value when stored as float (QdqOptions::int32_bias false).
        const bool rounded = !qn.bias.empty() && bn < 0 && xs != by_output_.end();
        Tensor b({cout});
        for (int64_t c = 0; c < cout; ++c) {
          b.f32()[c] = static_cast<float>(bias[c]);
          if (!rounded) continue;
          const float st = biasStep(xs->second.step, steps.f32()[steps.ndim() == 1 ? c : 0]);
          b.f32()[c] = static_cast<float>(quantizeBias(bias[c], st)) * st;
        }
        nd.inputs[2] = addInit(nd.name + ".bias", b);
      }
    }
    g_.nodes[i] = nd;
    g_.nodes.insert(g_.nodes.begin() + static_cast<std::ptrdiff_t>(i), pre.begin(), pre.end());
    return nd.outputs[0];
  }

  // y = a_c * (conv + b_c - mean_c) + beta_c, a_c = gamma_c / sqrt(var_c + eps)
  // (BatchNormOp's inference arithmetic): steps scale by |a_c|, levels flip
  // sign with a_c. `bias_in` null: the conv had no bias.
  void foldBatchNorm(IntWeight& w, const Node& bn, const std::vector<double>* bias_in,
                     std::vector<double>& bias_out) {
    perChannel(w);
    const float eps = bn.attrs.getFloat("epsilon", 1e-5f);
    const float* gamma = g_.initializers.at(bn.inputs[1]).f32();
    const float* beta = g_.initializers.at(bn.inputs[2]).f32();
    const float* mean = g_.initializers.at(bn.inputs[3]).f32();
    const float* var = g_.initializers.at(bn.inputs[4]).f32();
    const int64_t C = w.q.dim(0), per = w.q.numel() / C;
    std::vector<double> b(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      const float invstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[c]) + eps));
      const double a = static_cast<double>(gamma[c]) * invstd;
      const double bc = bias_in ? (*bias_in)[static_cast<size_t>(c)] : 0.0;
      b[static_cast<size_t>(c)] = a * (bc - mean[c]) + beta[c];
      int8_t* q = w.q.data<int8_t>() + c * per;
      if (a == 0.0) {
        std::fill(q, q + per, int8_t{0});
        w.steps[static_cast<size_t>(c)] = 0.f;
        continue;
      }
      if (a < 0.0)  // |q| <= 127 for abs-max scales, so -q fits int8
        for (int64_t k = 0; k < per; ++k) q[k] = static_cast<int8_t>(std::min(127, -int{q[k]}));
      w.steps[static_cast<size_t>(c)] = static_cast<float>(std::abs(a) * w.steps[static_cast<size_t>(c)]);
    }
    bias_out = std::move(b);
  }

  // The bias step step_x * step_w[c] is not stored: a Mul of the two step
  // initializers forms it (ORT constant-folds it before fusing QLinearConv),
  // so the float product is the one ORT and this rounding use.
  std::string int32Bias(const std::string& node, const std::vector<double>& bias,
                        const ActStep& x, const Tensor& w_steps, const std::string& w_steps_name,
                        std::vector<Node>& pre) {
    const int64_t C = static_cast<int64_t>(bias.size());
    const bool per = w_steps.ndim() == 1;
    Tensor bq({C}, DType::kI32);
    // Stored steps are > 0 (a zero channel's is 1), so biasStep is the Mul.
    for (int64_t c = 0; c < C; ++c)
      bq.data<int32_t>()[c] = quantizeBias(bias[static_cast<size_t>(c)],
                                           biasStep(x.step, w_steps.f32()[per ? c : 0]));
    const std::string qn = addInit(node + ".bias_int32", bq);
    const std::string sn = g_.uniqueName(node + ".bias_step");
    pre.push_back(makeNode(node + ".bias_step_Mul", "Mul", {x.step_name, w_steps_name}, {sn}));
    const std::string out = g_.uniqueName(node + ".bias_dq");
    Node dq = makeNode(node + ".bias_DequantizeLinear", "DequantizeLinear", {qn, sn}, {out});
    if (per) dq.attrs.set("axis", int64_t{0});
    pre.push_back(dq);
    return out;
  }

  // Ops with Q(f(y)) == Q(f(DQ(Q(y)))): monotone, identity or constant on
  // the grid; only input 0 carries the activation.
  bool gridExact(const Node& nd) const {
    static const char* kOps[] = {"Relu", "MaxPool", "Identity", "Flatten", "Reshape",
                                 "Squeeze", "Unsqueeze", "Dropout"};
    if (nd.op_type == "Clip") {
      for (size_t k = 1; k < nd.inputs.size(); ++k)
        if (!nd.inputs[k].empty() && !g_.isInitializer(nd.inputs[k])) return false;
      return true;
    }
    if (nd.op_type == "MaxPool" && nd.outputs.size() > 1) return false;  // indices
    return std::any_of(std::begin(kOps), std::end(kOps),
                       [&](const char* t) { return nd.op_type == t; });
  }

  // Q/DQ on quantized op output y when the single-consumer chain of
  // gridExact ops from y ends at an activation quantizer (its step is used).
  void addOutputQdq(const std::string& y) {
    std::string t = y;
    int first = -1;
    std::vector<std::string> chain;  // node names from y to the quantizer
    for (;;) {
      if (isOutput(g_, t)) return;
      const auto cons = g_.consumers(t);
      if (cons.size() != 1) return;
      const Node& c = g_.nodes[static_cast<size_t>(cons[0])];
      if (c.inputs.empty() || c.inputs[0] != t ||
          std::count(c.inputs.begin(), c.inputs.end(), t) != 1)
        return;
      if (c.op_type == kFakeQuantActOp) {
        if (first < 0) return;  // the quantizer already sits on y
        const ActStep& a = step(c);
        if (opts_.integer_clip && integerClip(y, chain, cons[0], a)) return;
        const std::string q = g_.uniqueName(y + ".q"), dq = g_.uniqueName(y + ".dq");
        Node nq = makeNode(y + ".QuantizeLinear", "QuantizeLinear", {y, a.step_name, zp_name_}, {q});
        Node nd = makeNode(y + ".DequantizeLinear", "DequantizeLinear", {q, a.step_name, zp_name_},
                           {dq});
        g_.nodes[static_cast<size_t>(first)].inputs[0] = dq;
        g_.nodes.push_back(nq);
        g_.nodes.push_back(nd);
        return;
      }
      if (!gridExact(c) || c.outputs.empty()) return;
      if (first < 0) first = cons[0];
      chain.push_back(c.name);
      t = c.outputs[0];
    }
  }

  // Bound of a Clip input k (1 = min, 2 = max) as a float; `dflt` if omitted.
  float clipBound(const Node& c, size_t k, float dflt) const {
    if (c.inputs.size() <= k || c.inputs[k].empty()) return dflt;
    return g_.initializers.at(c.inputs[k]).f32()[0];
  }

  // The uint8 level of v on grid `step` (zero point 128), saturated.
  static int level(float v, float step) {
    if (std::isinf(v)) return v > 0 ? 255 : 0;
    return static_cast<int>(std::clamp(std::nearbyint(v / step) + kActZeroPoint, 0.f, 255.f));
  }

  std::string u8Scalar(int v) {
    std::string& name = u8_consts_[v];
    if (name.empty()) {
      Tensor t(Shape{}, DType::kU8);
      t.data<uint8_t>()[0] = static_cast<uint8_t>(v);
      name = addInit("qdq_level_" + std::to_string(v), t);
    }
    return name;
  }

  // y -> Q -> Clip(lo, hi on levels) -> DQ replacing the Relu/Clip chain and
  // the quantizer node fq; false (graph untouched) for other chains. A chain
  // that clips at >= 0 uses zero point 0 instead of 128 (levels 0..127, the
  // same grid): ops reading it see uint8 <= 127, which ORT's U8S8 kernels
  // multiply exactly (no int16 saturation in pairs of u8 * s8).
  bool integerClip(const std::string& y, const std::vector<std::string>& chain, int fq,
                   const ActStep& a) {
    int lo = 0, hi = 255;
    for (const auto& name : chain) {
      const Node& c = g_.nodes[static_cast<size_t>(findNode(g_, name))];
      if (c.op_type != "Relu" && c.op_type != "Clip") return false;
      const float inf = std::numeric_limits<float>::infinity();
      const float mn = c.op_type == "Relu" ? 0.f : clipBound(c, 1, -inf);
      const float mx = c.op_type == "Relu" ? inf : clipBound(c, 2, inf);
      if (c.op_type == "Clip" && c.attrs.has("min")) return false;  // opset < 11 form
      lo = std::max(lo, level(mn, a.step));
      hi = std::min(hi, level(mx, a.step));
    }
    if (lo > hi) return false;  // disjoint clips: leave the float ops
    std::string zp = zp_name_;
    if (lo >= kActZeroPoint) {  // non-negative: Q saturates at level 0 already
      zp = zp0_name_;
      lo -= kActZeroPoint;
      hi -= kActZeroPoint;
    }
    const Node fqn = g_.nodes[static_cast<size_t>(fq)];
    const std::string q = g_.uniqueName(y + ".q");
    std::string levels = q;
    std::vector<Node> add{makeNode(y + ".QuantizeLinear", "QuantizeLinear",
                                   {y, a.step_name, zp}, {q})};
    if (lo > 0 || hi < 255) {
      levels = g_.uniqueName(y + ".q_clip");
      add.push_back(makeNode(y + ".Clip_levels", "Clip", {q, u8Scalar(lo), u8Scalar(hi)},
                             {levels}));
    }
    add.push_back(makeNode(fqn.name + "_DequantizeLinear", "DequantizeLinear",
                           {levels, a.step_name, zp}, {fqn.outputs[0]}));
    std::vector<Node> kept;
    for (const Node& n : g_.nodes)
      if (n.name != fqn.name && std::find(chain.begin(), chain.end(), n.name) == chain.end())
        kept.push_back(n);
    kept.insert(kept.end(), add.begin(), add.end());
    g_.nodes = std::move(kept);
    return true;
  }

  void replaceActQuantizers() {
    std::vector<Node> out;
    for (const Node& nd : g_.nodes) {
      if (nd.op_type != kFakeQuantActOp) {
        out.push_back(nd);
        continue;
      }
      SLIM_ENFORCE(qat_.activation_bits == 8, "QDQ export: activation_bits ",
                   qat_.activation_bits, " cannot be expressed by opset-13 QuantizeLinear "
                   "(8-bit only; node '", nd.name, "')");
      const ActStep& a = step(nd);
      const std::string q = g_.uniqueName(nd.inputs[0] + ".q");
      out.push_back(makeNode(nd.name + "_QuantizeLinear", "QuantizeLinear",
                             {nd.inputs[0], a.step_name, zp_name_}, {q}));
      out.push_back(makeNode(nd.name + "_DequantizeLinear", "DequantizeLinear",
                             {q, a.step_name, zp_name_}, {nd.outputs[0]}));
    }
    g_.nodes = std::move(out);
  }

  Graph& g_;
  const QatInfo& qat_;
  QdqOptions opts_;
  std::string zp_name_, zp0_name_;  // uint8 zero points 128 and 0
  std::map<std::string, ActStep> by_output_;  // FakeQuantAct output -> step
  std::vector<std::string> weight_dqs_;       // weight DequantizeLinear nodes
  std::map<int, std::string> u8_consts_;      // uint8 level -> scalar initializer
  std::vector<std::string> new_names_;
};

}  // namespace

graph::Graph buildQdqGraph(const graph::Graph& trained, const QatInfo& qat,
                           const std::vector<std::string>& student_outputs,
                           const QdqOptions& opts) {
  Graph g = extractSubgraph(trained, student_outputs);
  QdqBuilder(g, qat, opts).run();
  return g;
}

}  // namespace slim::compress
