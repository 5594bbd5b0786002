// Shared pieces of the comm layer: names for messages and the host reduction
// kernels used by the in-process backends.
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "comm/communicator.h"
#include "comm/detail.h"

namespace slim::comm {

const char* reduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

std::string describeOp(const std::string& op, const std::string& tag) {
  return tag.empty() ? op : op + " '" + tag + "'";
}

namespace detail {
namespace {

template <class T>
void reduceTyped(T* acc, const T* src, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      for (size_t i = 0; i < n; ++i) acc[i] = static_cast<T>(acc[i] + src[i]);
      return;
    case ReduceOp::kMax:
      for (size_t i = 0; i < n; ++i) acc[i] = std::max(acc[i], src[i]);
      return;
    case ReduceOp::kMin:
      for (size_t i = 0; i < n; ++i) acc[i] = std::min(acc[i], src[i]);
      return;
  }
}

}  // namespace

void reduceInto(void* acc, const void* src, size_t count, DType dtype,
                ReduceOp op) {
  switch (dtype) {
    case DType::kF32:
      return reduceTyped(static_cast<float*>(acc),
                         static_cast<const float*>(src), count, op);
    case DType::kI64:
      return reduceTyped(static_cast<int64_t*>(acc),
                         static_cast<const int64_t*>(src), count, op);
    case DType::kU8:
      return reduceTyped(static_cast<uint8_t*>(acc),
                         static_cast<const uint8_t*>(src), count, op);
    case DType::kI8:
      return reduceTyped(static_cast<int8_t*>(acc),
                         static_cast<const int8_t*>(src), count, op);
    case DType::kI32:
      return reduceTyped(static_cast<int32_t*>(acc),
                         static_cast<const int32_t*>(src), count, op);
  }
  SLIM_THROW(Error, "reduceInto: unknown dtype ", static_cast<int>(dtype));
}

std::string hostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

}  // namespace detail
}  // namespace slim::comm
