// ONNX model export: a slimtrain Graph (opset-13 form, see
// onnx_import_detail.h) becomes a ModelProto that onnx.checker (full check)
// accepts and ONNX Runtime loads.
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::models {

/// Writes `g` as an ONNX model: ir_version 7 (8 from opset 15), default
/// domain at `opset`, every initializer (parameters, buffers and constants)
/// in its dtype, attributes converted back, graph inputs/outputs with shapes
/// (a dynamic first dimension becomes dim_param "N"). The result is checked
/// in-process with ONNX's checker and strict shape inference before writing.
///
/// slimtrain-only attributes are dropped: coerce_2d=1 (opset < 13 Softmax,
/// LogSoftmax, Hardmax) is rewritten as Shape + Flatten(axis) + op(axis=1) +
/// Reshape unless axis is -1, where both semantics agree.
///
/// @param g      the graph (not modified)
/// @param path   output .onnx file
/// @param opset  default-domain opset, 13-17 (the IR form is valid for all)
/// @throws ModelError for an op outside the ONNX default domain (slimtrain's
///         own ops, e.g. fake quantization: not exportable yet), an attribute
///         without an ONNX equivalent, a checker failure, or an unwritable file
void exportOnnx(const graph::Graph& g, const std::string& path, int opset = 13);

}  // namespace slim::models
