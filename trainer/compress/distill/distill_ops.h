// Distillation loss kernels (act-reference §5.3): DistillL2Loss and
// SoftLabelLoss. Both take (teacher, student) and produce a scalar; both
// differentiate w.r.t. both inputs (the executor never asks for the teacher's
// gradient while the teacher is frozen, so that half costs nothing in training).
#pragma once

#include "trainer/ops/op.h"

namespace slim::compress {

/// Registers the distillation loss ops; calling it again only re-registers
/// the same factories (idempotent).
///  - "DistillL2Loss": inputs (teacher t, student s) of equal shape; output the
///    scalar mean((s - t)^2) over all elements.
///  - "SoftLabelLoss": inputs (teacher logits t, student logits s) of equal
///    shape [..., C] (leading dims are flattened into rows); attribute
///    `temperature` (float, default 1, > 0). With p = softmax(s / T) and
///    q = softmax(t / T) over the last axis, output the scalar
///    mean over rows of -sum_c q_c log p_c (log-softmax computed stably).
/// @param r the registry to add them to (normally ops::OpRegistry::get())
void registerDistillOps(ops::OpRegistry& r);

}  // namespace slim::compress
