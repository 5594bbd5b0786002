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

/// Runs `g` once at batch 1 on zero inputs and throws ModelError naming
/// `label` when it has no outputs or, with every input dimension but the batch
/// known, cannot run (a kernel_shape or group that does not fit its weights,
/// an impossible Reshape or Expand): such a model fails every command, so it
/// is the user's input (exit 2), found before any training. Models with other
/// dynamic dimensions are not probed (their real sizes are unknown here).
void checkModelRuns(const graph::Graph& g, const std::string& label);

/// Loads from Global-style fields: `dir`/`model_filename` with optional
/// `params_filename` (Paddle). Either field may be empty.
graph::Graph loadModelFrom(const std::string& dir, const std::string& model_filename,
                           const std::string& params_filename, uint64_t seed = 0);

}  // namespace slim::models
