// Which parameters unstructured pruning touches (act-reference §3.1), with
// ACT's Paddle rules translated to a graph::Graph of ONNX-named ops.
#pragma once

#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/graph/graph.h"

namespace slim::compress {

/// Pruning candidates of `g`, sorted by name. A candidate is a trainable
/// float32 initializer (ACT's student `Parameter`s) that is
///  - not named "teacher_..." (the merged teacher is never pruned),
///  - not read by any node whose op type contains "norm" (case-insensitive:
///    BatchNormalization, LayerNormalization, InstanceNormalization, ...),
///  - at least 2-D (ACT skips every 1-D parameter: biases, PACT alphas; a 0-D
///    scalar is skipped too),
///  - for prune_params_type "conv1x1_only": additionally 4-D with
///    shape[2] == shape[3] == 1, exactly ACT's shape test (no group check, so
///    a 1x1 depthwise or ConvTranspose weight qualifies as in ACT).
/// Everything else (first conv, classifier Gemm/MatMul, Gather tables) is a
/// candidate in the default mode; there is no first/last-layer rule.
/// @param g   the student graph (teacher merged or not)
/// @param cfg only prune_params_type is read: "" (null) or "conv1x1_only"
/// @return candidate names in ascending std::string order
/// @throws ConfigError for any other prune_params_type
std::vector<std::string> prunableParams(const graph::Graph& g,
                                        const config::UnstructurePrune& cfg);

}  // namespace slim::compress
