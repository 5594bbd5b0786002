// Gradient clipping as Paddle's paddle.nn.ClipGradByGlobalNorm /
// ClipGradByNorm / ClipGradByValue. Run after the gradient allreduce, so every
// rank clips identical gradients identically.
#pragma once

#include <vector>

#include "trainer/core/tensor.h"

namespace slim::optim {

/// Scales all gradients by clip_norm / max(global_norm, clip_norm), where
/// global_norm = sqrt(sum of squares over every element of every gradient).
/// The sum runs in double, tensor by tensor in the given order, element by
/// element, so the result is deterministic. Gradients are left untouched
/// when global_norm <= clip_norm.
/// @param grads     float32 gradients, scaled in place (null entries skipped)
/// @param clip_norm maximum global norm (> 0)
/// @return the global norm before clipping
float clipGradByGlobalNorm(std::vector<Tensor*>& grads, float clip_norm);

/// Scales each gradient separately so its own L2 norm is at most clip_norm.
/// @param grads     float32 gradients, scaled in place
/// @param clip_norm maximum per-tensor norm (> 0)
void clipGradByNorm(std::vector<Tensor*>& grads, float clip_norm);

/// Clamps every gradient element to [min, max].
/// @param grads float32 gradients, clamped in place
/// @param min   lower bound
/// @param max   upper bound (>= min)
void clipGradByValue(std::vector<Tensor*>& grads, float min, float max);

}  // namespace slim::optim
