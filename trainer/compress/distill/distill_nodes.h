// Default distillation nodes (act-reference §5.2, ACT's find_final_nodes in
// ONNX terms): the outputs of the last weighted layers of the student. Also
// what `slimtrain inspect` lists as "distillation nodes".
#pragma once

#include <string>
#include <vector>

#include "trainer/graph/graph.h"

namespace slim::compress {

/// True when node `n` of `g` is a layer with a constant weight: Conv,
/// ConvTranspose, Gemm (B), BatchNormalization, LayerNormalization,
/// InstanceNormalization (scale), MatMul with a constant input, Gather with
/// constant data (embedding). A weight counts as constant when it is an
/// initializer or the output of a non-weighted node whose first input is one
/// (a fake-quant or mask node inserted in front of the weight).
/// @param g the graph
/// @param n a node of g
bool isWeightedNode(const graph::Graph& g, const graph::Node& n);

/// Student tensors to distil by default: for every weighted node (teacher
/// nodes, i.e. slim_frozen ones, are skipped) that is not followed along its
/// first-successor chain (first consumer of the first output, repeatedly) by
/// another weighted node, its first output — or, when its first consumer is an
/// Add with a constant (bias) input, that Add's output. In graph order; each
/// becomes the pair ("teacher_" + name, name).
/// @param student the student graph (merged or not)
/// @return tensor names, possibly empty (no weighted layer)
std::vector<std::string> defaultDistillNodes(const graph::Graph& student);

}  // namespace slim::compress
