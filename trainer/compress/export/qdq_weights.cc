// uint8WeightsForSignedInputs (export_detail.h): the weight type of each
// quantized op of the QDQ export, chosen by what ONNX Runtime multiplies
// exactly and fast on x86 without VNNI (AVX2, AVX-512F). Its U8S8 kernels
// add pairs of uint8 * int8 products in int16 with saturation (vpmaddubsw):
// exact while activations stay <= 127 (2 * 127 * 128 < 2^15), which holds
// for inputs at zero point 0 (non-negative chains), not for signed inputs at
// zero point 128 (levels up to 255; measured here: logits off by up to 0.17)
// unless the weights stay within +-64 (2 * 255 * 64 < 2^15; what
// QuantAware.signed_input_weight_bits 7 trains). The other weights of ops
// with a signed input become uint8 q + 128 with zero point 128 (the same
// grid), which ORT runs as exact U8U8, slower than U8S8. Per op, so the
// bulk of a ReLU network keeps the faster U8S8 path (mobilenet_v2 batch 8:
// all U8U8 ran slower than FP32).
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "trainer/compress/export/export_detail.h"

namespace slim::compress::detail {

void uint8WeightsForSignedInputs(graph::Graph& g, const std::vector<std::string>& weight_dqs,
                                 const std::string& zp128, const std::string& zp0) {
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs) producer[o] = i;
  auto nonNegative = [&](const std::string& x) {
    const auto it = producer.find(x);
    if (it == producer.end()) return false;
    const graph::Node& p = g.nodes[it->second];
    return p.op_type == "DequantizeLinear" && p.inputs.size() > 2 && p.inputs[2] == zp0;
  };
  std::map<int64_t, std::string> channel_zps;  // per-channel zero points by count
  for (const auto& name : weight_dqs) {
    const auto it = std::find_if(g.nodes.begin(), g.nodes.end(),
                                 [&](const graph::Node& n) { return n.name == name; });
    SLIM_ENFORCE(it != g.nodes.end(), "QDQ export: weight dequantizer '", name, "' vanished");
    bool signed_input = false;
    for (int c : g.consumers(it->outputs[0]))
      signed_input = signed_input || !nonNegative(g.nodes[static_cast<size_t>(c)].inputs[0]);
    if (!signed_input) continue;
    const Tensor& q = g.initializers.at(it->inputs[0]);
    const int8_t* qv = q.data<int8_t>();
    if (std::all_of(qv, qv + q.numel(), [](int8_t v) { return v >= -64 && v <= 64; }))
      continue;  // U8S8 pairs stay within int16
    Tensor u(q.shape(), DType::kU8);
    for (int64_t k = 0; k < u.numel(); ++k)
      u.data<uint8_t>()[k] = static_cast<uint8_t>(int{q.data<int8_t>()[k]} + 128);
    std::string base = it->inputs[0];
    if (base.size() > 5 && base.compare(base.size() - 5, 5, "_int8") == 0)
      base.replace(base.size() - 5, 5, "_uint8");
    const std::string uname = g.uniqueName(base);
    g.addInitializer(uname, std::move(u));
    const Tensor& steps = g.initializers.at(it->inputs[1]);
    std::string zp = zp128;
    if (steps.ndim() > 0) {
      std::string& z = channel_zps[steps.numel()];
      if (z.empty()) {
        Tensor t({steps.numel()}, DType::kU8);
        std::fill(t.data<uint8_t>(), t.data<uint8_t>() + t.numel(), uint8_t{128});
        z = g.uniqueName("qdq_weight_zero_point_" + std::to_string(steps.numel()));
        g.addInitializer(z, std::move(t));
      }
      zp = z;
    }
    it->inputs = {uname, it->inputs[1], zp};
  }
}

}  // namespace slim::compress::detail
