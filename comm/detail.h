// Internals shared by the comm backends (not part of the public interface):
// the host-side element-wise reduction and a Work that is already finished.
#pragma once

#include <cstddef>
#include <exception>
#include <string>

#include "comm/communicator.h"

namespace slim::comm::detail {

using slim::detail::str;

/// acc[i] = op(acc[i], src[i]) for i < count, for every DType.
void reduceInto(void* acc, const void* src, size_t count, DType dtype,
                ReduceOp op);

/// This machine's host name (for error messages).
std::string hostName();

/// A Work whose operation completed when it was created (world size 1,
/// blocking fallbacks). If `error` is set, wait() rethrows it.
class CompletedWork : public Work {
 public:
  explicit CompletedWork(std::exception_ptr error = nullptr) : error_(error) {}
  bool test() override { return true; }
  void wait() override {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

}  // namespace slim::comm::detail
