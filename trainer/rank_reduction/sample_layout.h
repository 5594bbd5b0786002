// Where the samples of each tensor lie (SampleLayout, sample_groups.h),
// followed through a graph as it runs: the executor applies these rules to
// every node's outputs after its forward, from its inputs' layouts and the
// shapes just computed, and hands each op its inputs' layouts
// (Op::setInputSamples). The graph inputs hold their samples along
// dimension 0.
//
// The rules only ever answer "unknown" when unsure: an op reading an unknown
// layout falls back to chunks of rows (exact_sum.h), which is slower but
// the same bits on any number of ranks too. A known layout must never be
// wrong: the ops that move data across dimensions (Transpose, Einsum, Gather
// along the samples) get rules of their own or none. The answers depend on
// the shapes but not on the number of samples, so one rank with the whole
// batch and R ranks with a block of it each decide alike.
#pragma once

#include <string>
#include <vector>

#include "trainer/core/tensor.h"
#include "trainer/ops/attrs.h"
#include "trainer/rank_reduction/sample_groups.h"

namespace slim::rank_reduction {

/// A graph input's layout: its dimension 0 holds the samples.
SampleLayout inputSampleLayout(const Shape& s);

/// The layout of an output of shape `out` of an op of type `op_type` with
/// attributes `attrs`, given its inputs' layouts `in` and shapes `in_shapes`
/// (null for an omitted input).
SampleLayout outputSampleLayout(const std::string& op_type, const ops::Attrs& attrs,
                                const std::vector<SampleLayout>& in,
                                const std::vector<const Shape*>& in_shapes, const Shape& out);

/// The dimension of `s` that holds the samples of `l`, outermost (index =
/// sample * (size / samples) + j: [N*H, T, D] from a per-head split), or -1
/// (e.g. [T*N, E] with layout {T, N, E} has none).
int sampleDim(const Shape& s, const SampleLayout& l);

}  // namespace slim::rank_reduction
