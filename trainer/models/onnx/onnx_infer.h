// `slimtrain infer`: run a model (whatever loadModel reads: an .onnx file, a
// Paddle inference model or its folder, a zoo name) on ONNX TensorProto (.pb)
// inputs and write its outputs as output_<i>.pb, the layout of ONNX's test
// data sets.
#pragma once

#include <string>
#include <vector>

namespace slim::models {

/// Loads `model_path` (models::loadModel), runs one eval-mode forward pass and writes output i
/// to `output_dir`/output_<i>.pb (named after the graph output).
/// Inputs are matched to graph inputs by the TensorProto's name when every
/// file carries a graph input's name, otherwise by position. A double input
/// feeds a float input; int32 feeds int64 and vice versa.
/// @param model_path      the .onnx file, Paddle .pdmodel/__model__ (params
///                        beside it) or a folder holding one, or zoo:<name>
/// @param input_pb_paths  one .pb per graph input
/// @param output_dir      existing folder for output_<i>.pb
/// @return the paths written, in graph output order
/// @throws ModelError for a bad model or input file, ShapeError for inputs
///         that do not fit, ConfigError for a wrong number of inputs
std::vector<std::string> runOnnxInfer(const std::string& model_path,
                                      const std::vector<std::string>& input_pb_paths,
                                      const std::string& output_dir);

}  // namespace slim::models
