// Trainable per-channel normalisation for convolutions exported with their
// BatchNormalization folded in (torch.onnx.export in eval mode, the default).
//
// Why: compression moves a convolution's output statistics (GMP zeroes 75 %
// of a 1x1 conv's weights; fake quantization rounds the rest). A model that
// kept its batch norms re-normalises each channel with batch statistics while
// it trains; in a folded model nothing does, and the student ends 1-3 points
// further from its teacher than the same network exported with BN kept.
//
// What: renormalizeConvs inserts a BatchNormalization (attribute slim_renorm)
// after each such convolution and moves the conv's bias into it (before a
// batch norm a bias only trains on rounding noise). It starts as y = x + b
// (scale 1, mean 0, a variance v with 1/sqrt(v + eps) == 1 in float), so
// evaluation before training, the teacher comparison and the distillation
// targets are unchanged. Its first training forward (BatchNormOp,
// slim_renorm) sets the running mean/variance to that batch's statistics
// (global over ranks, sync BN), scale = sqrt(var + eps) and bias = mean + b,
// so the layer computes nearly the same; from then on it trains like any
// batch norm and the QDQ export handles it as for models that kept theirs.
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::compress {

/// Convolutions that get a renormalisation: trainable Conv nodes whose output
/// is not read by a BatchNormalization and does not reach `logits` without
/// passing another weighted op (Conv, Gemm, MatMul): a classifier conv stays
/// as it is. Returns the number of nodes inserted.
int renormalizeConvs(graph::Graph& g, const std::string& logits);

/// True when the model looks like a CNN exported with its batch norms folded:
/// at least two trainable convolutions and no BatchNormalization (nor Layer-
/// or InstanceNormalization: a ViT's patch embedding is not a folded conv).
/// Mixed models are left alone.
bool hasFoldedConvs(const graph::Graph& g);

}  // namespace slim::compress
