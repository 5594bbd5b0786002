// Rank-dependent inputs with closed-form collective results (STYLE rule 30):
// element i of rank r is scale*r + base(i), so over n ranks the sum is
// scale*n(n-1)/2 + n*base(i), the max scale*(n-1) + base(i), the min base(i).
// Values are chosen so every sum is exact in the element type.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace slim::test {

inline int64_t oracleScale(DType t) {
  return t == DType::kI64 ? (int64_t{1} << 40) : 1;
}
inline int64_t oracleBase(DType t, size_t i) {
  switch (t) {
    case DType::kI64: return static_cast<int64_t>(i);
    case DType::kU8: return static_cast<int64_t>(i % 7);
    default: return static_cast<int64_t>(i % 1000);
  }
}
/// Input element i of `rank`.
inline int64_t oracleValue(DType t, int rank, size_t i) {
  return oracleScale(t) * rank + oracleBase(t, i);
}
/// Expected allreduce result for element i over n ranks.
inline int64_t oracleReduce(DType t, comm::ReduceOp op, int n, size_t i) {
  const int64_t s = oracleScale(t), b = oracleBase(t, i);
  switch (op) {
    case comm::ReduceOp::kSum: return s * n * (n - 1) / 2 + n * b;
    case comm::ReduceOp::kMax: return s * (n - 1) + b;
    case comm::ReduceOp::kMin: return b;
  }
  return 0;
}

inline void setElem(void* buf, DType t, size_t i, int64_t v) {
  switch (t) {
    case DType::kF32: static_cast<float*>(buf)[i] = static_cast<float>(v); return;
    case DType::kI64: static_cast<int64_t*>(buf)[i] = v; return;
    case DType::kU8: static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(v); return;
    case DType::kI8: static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(v); return;
    case DType::kI32: static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(v); return;
  }
}
inline int64_t getElem(const void* buf, DType t, size_t i) {
  switch (t) {
    case DType::kF32: return static_cast<int64_t>(static_cast<const float*>(buf)[i]);
    case DType::kI64: return static_cast<const int64_t*>(buf)[i];
    case DType::kU8: return static_cast<const uint8_t*>(buf)[i];
    case DType::kI8: return static_cast<const int8_t*>(buf)[i];
    case DType::kI32: return static_cast<const int32_t*>(buf)[i];
  }
  return 0;
}

/// A buffer of `count` elements filled with rank's oracle inputs.
inline std::vector<unsigned char> oracleInput(DType t, int rank, size_t count) {
  std::vector<unsigned char> buf(count * dtypeSize(t) + 1);  // +1: never empty
  for (size_t i = 0; i < count; ++i) setElem(buf.data(), t, i, oracleValue(t, rank, i));
  return buf;
}

/// "" when buf[i] == expect(i) for all i < count, else the first mismatch.
template <class F>
std::string firstMismatch(const void* buf, DType t, size_t count, F expect) {
  for (size_t i = 0; i < count; ++i) {
    int64_t got = getElem(buf, t, i), want = expect(i);
    if (got != want)
      return "element " + std::to_string(i) + ": got " + std::to_string(got) +
             ", want " + std::to_string(want);
  }
  return "";
}

}  // namespace slim::test
