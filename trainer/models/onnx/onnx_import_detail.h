// Internal steps of the ONNX importer, split out of onnx_import.cc:
// opset normalisation of single nodes, constant folding and parameter
// classification. Not a public header.
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::models::detail {

/// Lowest and highest default-domain opset the importer accepts.
constexpr int kMinOpset = 7;
constexpr int kMaxOpset = 18;

/// Rewrites `n`, read from a model of default-domain opset `opset`, into the
/// opset-13 form slimtrain's IR uses (the exporter writes it unchanged):
/// attribute forms of Squeeze/Unsqueeze/ReduceSum axes, Clip bounds, Pad
/// pads/value and Dropout ratio become constant inputs; opset-18 Reduce* axes
/// inputs become attributes; Softmax/LogSoftmax/Hardmax before opset 13 get
/// coerce_2d=1 and an explicit axis. New constants are added to `g`.
/// Throws ModelError ("... not supported") for forms with no equivalent.
void normalizeNode(graph::Graph& g, graph::Node& n, int opset);

/// Evaluates every node whose inputs are all initializers with the registered
/// kernels (eval mode) and replaces it by initializers holding its outputs;
/// nodes whose kernel fails or is nondeterministic stay. Then drops nodes and
/// initializers no graph output needs. Returns the number of folded nodes.
int foldConstants(graph::Graph& g);

/// Marks float initializers that feed weight inputs as trainable (Conv and
/// ConvTranspose W/B, Gemm B/C, MatMul input 1, the scale/B of
/// BatchNormalization, LayerNormalization and InstanceNormalization, PRelu's
/// slope, the table of a Gather by non-constant indices (an Embedding), the
/// weight a two-operand Einsum contracts with an activation, and
/// a non-scalar float initializer an Add or Mul applies to an activation (a
/// bias, a decomposed LayerNorm's gamma/beta, a layer scale)) and the
/// BatchNormalization mean/var as buffers.
void classifyInitializers(graph::Graph& g);

}  // namespace slim::models::detail
