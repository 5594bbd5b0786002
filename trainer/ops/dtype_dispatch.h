// Runtime dtype -> C++ element type dispatch for kernels that work on every
// dtype (comparisons, Where, Min/Max, Range) and the int64/int32 reader of
// index-like inputs (starts, repeats, split sizes).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::ops::detail {

/// Calls fn(T{}) with T the element type of `t` (bool is uint8 0/1).
template <class Fn>
void dispatchDType(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: fn(float{}); break;
    case DType::kI64: fn(int64_t{}); break;
    case DType::kI32: fn(int32_t{}); break;
    case DType::kU8: fn(uint8_t{}); break;
    case DType::kI8: fn(int8_t{}); break;
  }
}

/// The values of an integer tensor (int64, int32, int8 or uint8) as int64.
/// @throws Error when `t` holds floats.
inline std::vector<int64_t> intValues(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::kF32)
    SLIM_THROW(ModelError, "expected an integer tensor, got float32");
  dispatchDType(t.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int64_t>(p[i]);
  });
  return v;
}

}  // namespace slim::ops::detail
