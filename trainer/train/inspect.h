// `slimtrain inspect MODEL`: what is inside a model and what ACT would do to
// it — inputs/outputs, every tensor with its inferred shape and producer,
// parameters, the ops Quantization would quantize, the parameters
// UnstructurePrune would prune, and the default distillation nodes. Answers
// "which nodes do I distill?" without Netron.
#pragma once

#include <string>

namespace slim::train {

/// Builds the report of `model_path` (text, or JSON when `json`).
/// @param quant_config optional YAML config whose Quantization/UnstructurePrune
///        sections replace the defaults ("" = ACT defaults)
std::string inspectModel(const std::string& model_path, bool json,
                         const std::string& quant_config = "");

}  // namespace slim::train
