// The common start of a backward pass for an op whose gradient flows to its
// input 0 only (activations, reductions, gathers): one place for the rule
// that a gradient nobody wants is not computed, and that a missing output
// gradient (the output does not reach the loss) gives a zero input gradient.
#pragma once

#include <vector>

#include "trainer/core/tensor.h"

namespace slim::ops {

/// @return false when nothing is left to compute: no gradient is wanted for
///   input 0 (din[0] absent), or none flows in (dout[0] null; din[0] is then
///   zeros of input 0's shape). Otherwise din[0] has input 0's shape, its
///   values unspecified, for the caller to write.
inline bool beginUnaryBackward(const std::vector<Tensor*>& in,
                               const std::vector<const Tensor*>& dout,
                               const std::vector<Tensor*>& din) {
  if (din.empty() || !din[0]) return false;
  din[0]->resize(in[0]->shape());
  if (!dout[0]) {
    din[0]->zero();
    return false;
  }
  return true;
}

/// For a backward that adds into din[0] (scatters): false when no gradient
/// is wanted or none flows in; otherwise din[0] is zeros of input 0's shape.
/// Either way din[0], when wanted, ends zeroed before the caller adds to it.
inline bool beginScatterBackward(const std::vector<Tensor*>& in,
                                 const std::vector<const Tensor*>& dout,
                                 const std::vector<Tensor*>& din) {
  if (din.empty() || !din[0]) return false;
  din[0]->resize(in[0]->shape());
  din[0]->zero();
  return dout[0] != nullptr;
}

}  // namespace slim::ops
