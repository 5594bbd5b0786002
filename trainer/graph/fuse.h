// Activation fusion inside the executor (the Graph is not changed): a Relu or
// Clip that is the only reader of a Conv / BatchNormalization output is
// applied by that producer as it writes the output, and the activation node
// then only shares its input's storage (Op::fuseOutputActivation,
// Op::forwardAsAlias). Same bits forward and backward; one pass over the
// tensor and one tensor's memory less per pair.
#pragma once

#include <memory>
#include <vector>

#include "trainer/graph/graph.h"
#include "trainer/ops/op.h"

namespace slim::graph::detail {

struct FusedActivation {
  size_t producer = 0, activation = 0;  ///< node indices (graph order)
};

/// Fuses every eligible pair of `g` (ops[i] is node i's op): the tensor
/// between them has no other reader and is not a graph output, and a Clip's
/// bounds are constants (attributes, or non-trainable scalar initializers).
std::vector<FusedActivation> fuseActivations(const Graph& g,
                                             std::vector<std::unique_ptr<ops::Op>>& ops);

}  // namespace slim::graph::detail
