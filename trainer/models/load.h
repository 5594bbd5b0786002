// One entry point for "a model the user gave us": an .onnx file, a Paddle
// program (.pdmodel / __model__) with combined or separate params, a folder
// holding one of those, or a zoo name. Dispatches to the importers.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/graph/graph.h"

namespace slim::models {

/// Loads `path`: "zoo:<name>", an .onnx file, a .pdmodel/__model__ file
/// (params: `params_path`, or the sibling .pdiparams, or separate files in the
/// same folder), or a folder containing model.onnx / *.pdmodel / __model__.
/// Throws ModelError naming the path when nothing loadable is found.
graph::Graph loadModel(const std::string& path, const std::string& params_path = "",
                       uint64_t seed = 0);

/// Loads from Global-style fields: `dir`/`model_filename` with optional
/// `params_filename` (Paddle). Either field may be empty.
graph::Graph loadModelFrom(const std::string& dir, const std::string& model_filename,
                           const std::string& params_filename, uint64_t seed = 0);

}  // namespace slim::models
