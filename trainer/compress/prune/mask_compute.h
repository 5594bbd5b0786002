// Mask computation for unstructured pruning (SEMANTICS.md "Deliberate
// differences": exactly floor(ratio·N) pruned, smallest magnitude first, ties
// by lower index, existing zeros counted as pruned) and the mask hash that
// ranks allreduce to check they agree. Pure functions over raw buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace slim::compress {

/// One candidate tensor: its weights (read) and its uint8 mask (read as the
/// previous mask, written with the new one), both `n` elements.
struct MaskTarget {
  const float* w = nullptr;
  uint8_t* mask = nullptr;
  int64_t n = 0;
};

/// Ratio mode. The magnitude of element i is |w[i]| where mask[i] != 0 and 0
/// where the previous mask is 0 (a pruned weight counts as zero even if the
/// optimizer moved it, so masks never re-grow); NaN counts as +inf.
/// Over a group of N elements with Z zero magnitudes, all zeros are pruned
/// plus the (floor(ratio·N) − Z) smallest non-zeros when positive, ordered by
/// (magnitude, position); position = (target index in `ts`, flat index), so
/// in global mode ties go to the earlier candidate, then the lower index.
/// Exactly max(floor(ratio·N), Z) entries of the group end up 0.
/// @param ts    the candidates, in candidate order
/// @param ratio target sparsity in [0, 1]
/// @param local true: one group per tensor (local_sparsity); false: one group
///              over all tensors together
void ratioMasks(const std::vector<MaskTarget>& ts, double ratio, bool local);

/// Threshold mode: mask[i] = 0 where the magnitude (as in ratioMasks) is
/// < threshold or exactly 0 (existing zeros stay pruned), 1 otherwise.
void thresholdMasks(const std::vector<MaskTarget>& ts, double threshold);

/// FNV-1a 64-bit over `n` bytes, continuing from `h` (start with kFnvOffset).
/// Each step is a bijection of the running hash, so changing any single byte
/// always changes the result.
uint64_t fnv1a(const void* data, size_t n, uint64_t h);
inline constexpr uint64_t kFnvOffset = 14695981039346656037ull;

}  // namespace slim::compress
