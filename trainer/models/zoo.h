// Built-in architectures ("zoo:<name>" in Global.model): graphs with input
// "image" [N,1,28,28] and output "logits" [N,10], initialised like PyTorch's
// default layers so a recipe behaves as it would in PyTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/graph/graph.h"

namespace slim::models {

/// Builds zoo model `name` ("mobilenet_tiny", "lenet5"; an optional "zoo:"
/// prefix is accepted) with weights drawn from `seed`. Throws ConfigError
/// listing the known names for an unknown one.
graph::Graph buildZooModel(const std::string& name, uint64_t seed,
                           int64_t in_channels = 1, int64_t num_classes = 10);

/// Names accepted by buildZooModel.
std::vector<std::string> zooModelNames();

}  // namespace slim::models
