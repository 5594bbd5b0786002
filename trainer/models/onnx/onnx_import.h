// ONNX model import: an .onnx file (default-domain opset 7-18) becomes a
// slimtrain Graph. Tensor and node names are kept, Constant nodes and
// all-constant subgraphs are folded into initializers, weights are classified
// (trainable parameters, BatchNormalization buffers) and older opset forms
// are normalised to opset 13 (see onnx_import_detail.h).
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::models {

/// Imports an ONNX model file.
///
/// Graph inputs keep their ONNX shapes with dynamic dimensions (dim_param,
/// 0 or unknown) as -1; the first dimension of 4-D inputs is always dynamic
/// (the batch), and outputs whose first dimension equalled that batch get -1
/// too. Graph inputs that are also initializers (old exporters) are
/// initializers only. Initializers: float/double -> float32, int64/int32 ->
/// int64, uint8/int8 kept, bool -> uint8.
///
/// @param path  the .onnx file
/// @return the graph, topologically sorted and validated; every node's
///         kernel has been created once to check its attributes
/// @throws ModelError naming the file (and its size) when it cannot be parsed,
///         naming the node for an unsupported op type ("node 'n': unsupported op
///         type 'X' (ONNX domain D, opset N)") or attribute, and naming the
///         tensor for external data or unsupported element types
graph::Graph importOnnx(const std::string& path);

/// Imports an ONNX model from its serialized bytes (what importOnnx reads
/// from the file). `label` names the source in error messages, where
/// importOnnx puts the path ("ONNX model 'label' (N bytes): ...").
///
/// @throws ModelError as importOnnx does
graph::Graph importOnnxBytes(const std::string& bytes, const std::string& label);

}  // namespace slim::models
