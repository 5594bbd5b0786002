// Ops the executor substitutes for fused nodes (erf_gelu.cc): the exact GELU
// of a PyTorch export's five nodes, and nothing for the nodes it absorbs.
// Not ONNX ops: they are not in the registry.
#pragma once

#include <memory>
#include <string>

#include "trainer/ops/op.h"

namespace slim::ops {

/// Inputs: x, then the three float scalars a, b, c of
/// y = (erf(x / a) + b) * x * c; output y. Same bits as Div, Erf, Add, Mul,
/// Mul, forward and backward.
std::unique_ptr<Op> makeErfGelu(const std::string& label);

/// An op that does nothing, forward or backward: what the executor runs for
/// a node whose work a fused op does (it gives the node no inputs or outputs).
std::unique_ptr<Op> makeNoOp(const std::string& label);

}  // namespace slim::ops
