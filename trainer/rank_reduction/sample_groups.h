// Where a tensor's samples lie, and the rows of a weight gradient's sample
// groups (overview: rank_reduction.h). An op reducing rows of an activation
// into a weight gradient (MatMul, Gemm) forms one float partial per group of
// kSumChunk samples when the executor knows where the samples lie
// (sample_layout.h tracks it through the graph), else per kSumChunk rows.
//
// A group's rows are the same set, read in the same order, whether one rank
// holds the whole batch or each of R ranks a contiguous block of it (a
// multiple of kSumChunk samples): so are the partials, and the fixed-point
// sums of exact_sum.h.
#pragma once

#include <algorithm>
#include <cstdint>

#include "trainer/rank_reduction/exact_sum.h"

namespace slim::rank_reduction {

/// A tensor of `outer * samples * inner` elements whose sample s holds the
/// elements o * samples * inner + s * inner + i (o < outer, i < inner). An
/// image batch [N, C, H, W] is {1, N, C*H*W}; a sequence-first [T, N, E] is
/// {T, N, E}, and stays so when reshaped to [T*N, E]. samples == 0: unknown
/// (or not per sample).
struct SampleLayout {
  int64_t outer = 0, samples = 0, inner = 0;
  bool known() const { return samples > 0; }
  bool operator==(const SampleLayout&) const = default;
};

/// The rows of a row-major [rows, k] matrix with layout `l` (each sample
/// owning whole rows: l.inner % k == 0) in groups of kSumChunk samples.
/// Group g's rows are the runs r0(g, o) + [0, runRows(g)) for o < outer,
/// read in that order; contiguous() when they form one block.
struct SampleGroups {
  SampleGroups(const SampleLayout& l, int64_t k)
      : outer(l.outer), samples(l.samples), rows_per_sample(l.inner / k),
        count((l.samples + kSumChunk - 1) / kSumChunk) {}
  /// True when `l` lets a [rows, k] matrix be grouped by samples.
  static bool fits(const SampleLayout& l, int64_t k, int64_t rows) {
    return l.known() && k > 0 && l.inner % k == 0 && l.outer * l.samples * (l.inner / k) == rows;
  }
  int64_t firstSample(int64_t g) const { return g * kSumChunk; }
  int64_t runRows(int64_t g) const {
    return (std::min(samples, firstSample(g) + kSumChunk) - firstSample(g)) * rows_per_sample;
  }
  int64_t runStart(int64_t g, int64_t o) const {
    return (o * samples + firstSample(g)) * rows_per_sample;
  }
  int64_t rows(int64_t g) const { return outer * runRows(g); }
  bool contiguous(int64_t g) const { return outer == 1 || runRows(g) == samples * rows_per_sample; }

  int64_t outer, samples, rows_per_sample, count;
};

}  // namespace slim::rank_reduction
