// Internals shared by the student exports (student_extract.cc,
// qdq_build.cc, qdq_batchnorm.cc, qdq_weights.cc): graph rewiring helpers.
#pragma once

#include <string>
#include <vector>

#include "trainer/graph/graph.h"

namespace slim::compress::detail {

/// Replaces every node input (and graph output) named `from` by `to`.
void renameUses(graph::Graph& g, const std::string& from, const std::string& to);

/// Removes each node of type `op_type` whose input 0 is passed through
/// unchanged at inference (Pact), wiring its readers to that input.
void bypassNodes(graph::Graph& g, const std::string& op_type);

/// Rewrites every inference BatchNormalization (parameters constant,
/// statistics outputs unread) as BN(scale a, bias b, mean 0, var v) with a =
/// gamma * invstd and b = fma(-mean, a, beta) as BatchNormOp computes them
/// and 1 / sqrt(v + eps) == 1, so slimtrain's kernel keeps its bits; the mean
/// and variance initializers are shared per (channel count, eps).
/// (QdqOptions::compact_batch_norm)
void compactBatchNorms(graph::Graph& g);

/// Turns the int8 weight (no zero point) read by each DequantizeLinear in
/// `weight_dqs` into uint8 q + 128 with zero point 128 (`zp128` per tensor,
/// a shared [C] one per channel) unless every op reading it reads an input
/// dequantized at zero point `zp0` (non-negative levels <= 127) or every
/// level is within +-64 (QuantAware.signed_input_weight_bits 7): the
/// combinations ONNX Runtime multiplies exactly on x86 (qdq_weights.cc).
/// (QdqOptions::uint8_weights)
void uint8WeightsForSignedInputs(graph::Graph& g, const std::vector<std::string>& weight_dqs,
                                 const std::string& zp128, const std::string& zp0);

}  // namespace slim::compress::detail
