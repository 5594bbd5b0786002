// The op families the compression passes put into graphs, registered in one
// call at program start (launcher/run.cc; the unit tests' main,
// tests/unit/compress_ops_main.cc): fake quantization, PACT and the int32 bias
// simulation (quant/quant_ops.h) and the distillation losses
// (distill/distill_ops.h), as internal ops (not ONNX: a model file naming one
// is refused), and QuantizeLinear / DequantizeLinear for INT8 QDQ models
// (export/qdq_ops.h). The passes register nothing themselves. The built-in
// ONNX ops come with ops::OpRegistry::get().
#pragma once

#include "trainer/ops/op.h"

namespace slim::compress {

/// Adds every compression op family to `r` (normally ops::OpRegistry::get());
/// call once, before any graph is built and before threads start.
void registerCompressOps(ops::OpRegistry& r);

}  // namespace slim::compress
