// The common starts of op passes, one place for each rule: the input checks
// of one-input and two-input forwards, and the start of a backward pass for
// an op whose gradient flows to its input 0 only (activations, reductions,
// gathers): a gradient nobody wants is not computed, and a missing output
// gradient (the output does not reach the loss) gives a zero input gradient.
#pragma once

#include <string>
#include <vector>

#include "trainer/core/error.h"
#include "trainer/core/tensor.h"
#include "trainer/ops/op.h"

namespace slim::ops {

/// Input 0 of a one-input forward, which must be there and float32.
/// @throws ModelError (via requireF32) or an enforce error naming `label`
inline const Tensor& requireF32Input(const std::vector<Tensor*>& in, const std::string& label) {
  SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
  const Tensor& x = *in[0];
  requireF32(x, label);
  return x;
}

/// Checks that inputs 0 and 1 of a two-input forward are there with one dtype.
inline void requireTwoInputsOfOneDtype(const std::vector<Tensor*>& in, const std::string& label) {
  SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs two inputs");
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  SLIM_ENFORCE(a.dtype() == b.dtype(), label, ": input dtypes differ (", dtypeName(a.dtype()),
               " vs ", dtypeName(b.dtype()), ")");
}

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

/// For a float32 op whose backward adds into din[0] from several output
/// gradients: nullptr when no gradient is wanted for input 0; otherwise
/// din[0], zeros of input 0's shape.
inline Tensor* zeroedF32InputGrad(const std::vector<Tensor*>& in, const std::vector<Tensor*>& din,
                                  const std::string& label) {
  if (din.empty() || !din[0]) return nullptr;
  requireF32(*in[0], label);
  din[0]->resize(in[0]->shape());
  din[0]->zero();
  return din[0];
}

}  // namespace slim::ops
