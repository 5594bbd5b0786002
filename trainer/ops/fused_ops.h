// Ops the executor substitutes for fused nodes (graph/fuse.h): the exact GELU
// of a PyTorch export's five nodes (erf_gelu.cc), x * f(x) of two
// (activation.cc), and nothing for the nodes they absorb. Not ONNX ops:
// they are not in the registry.
#pragma once

#include <memory>
#include <string>

#include "trainer/ops/op.h"

namespace slim::ops {

/// Inputs: x, then the three float scalars a, b, c of
/// y = (erf(x / a) + b) * x * c; output y. Same bits as Div, Erf, Add, Mul,
/// Mul, forward and backward.
std::unique_ptr<Op> makeErfGelu(const std::string& label);

/// y = x * f(x) for f the activation `act_type` ("Sigmoid": SiLU / swish,
/// "HardSigmoid": hard-swish) with that node's attributes; null for other
/// types. Same bits as the activation and the Mul, forward and backward.
std::unique_ptr<Op> makeSelfGated(const std::string& act_type, const Attrs& act_attrs,
                                  const std::string& label);

/// An op that does nothing, forward or backward: what the executor runs for
/// a node whose work a fused op does (it gives the node no inputs or outputs).
std::unique_ptr<Op> makeNoOp(const std::string& label);

}  // namespace slim::ops
