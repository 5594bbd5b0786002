// ONNX QuantizeLinear / DequantizeLinear (opset 13) kernels for slimtrain's
// executor, so an exported QDQ graph can be run and compared with the
// fake-quant training graph without ONNX Runtime. Inference only.
#pragma once

#include "trainer/ops/op.h"

namespace slim::compress {

/// Registers QuantizeLinear and DequantizeLinear (idempotent).
/// QuantizeLinear [x f32, scale, zero_point?] attr axis (default 1):
///   q = saturate(round_half_even(x / scale) + zp), uint8 when the zero point
///   is absent, else the zero point's dtype (uint8 / int8).
/// DequantizeLinear [x u8|i8|i32, scale, zero_point?] attr axis:
///   y = (x - zp) * scale (float). A 1-D scale of more than one element is
///   per-axis along `axis` (negative counts from the end); a scalar or
///   one-element scale is per tensor. Not differentiable.
/// @param r the registry (usually ops::OpRegistry::get())
void registerQdqOps(ops::OpRegistry& r);

}  // namespace slim::compress
