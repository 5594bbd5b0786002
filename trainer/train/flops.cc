// FLOP counting from shapes: only the multiply-add heavy ops count; the
// elementwise ops are memory bound and excluded, as is conventional.
#include "trainer/train/flops.h"

namespace slim::train {

double forwardFlops(graph::Executor& ex) {
  double flops = 0;
  for (const auto& n : ex.graph().nodes) {
    if (n.outputs.empty() || !ex.hasValue(n.outputs[0])) continue;
    const Tensor& y = ex.value(n.outputs[0]);
    if (n.op_type == "Conv") {
      const Tensor& w = ex.value(n.inputs[1]);  // [M, C/g, kH, kW]
      double per_out = static_cast<double>(w.numel() / w.dim(0));
      flops += 2.0 * static_cast<double>(y.numel()) * per_out;
    } else if (n.op_type == "Gemm") {
      const Tensor& a = ex.value(n.inputs[0]);
      int64_t k = n.attrs.getInt("transA", 0) ? a.dim(0) : a.dim(1);
      flops += 2.0 * static_cast<double>(y.numel()) * static_cast<double>(k);
    } else if (n.op_type == "MatMul") {
      const Tensor& a = ex.value(n.inputs[0]);
      flops += 2.0 * static_cast<double>(y.numel()) * static_cast<double>(a.dim(-1));
    }
  }
  return flops;
}

}  // namespace slim::train
