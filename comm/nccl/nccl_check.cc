// Error text for SLIM_CUDA_CHECK / SLIM_NCCL_CHECK.
#include "comm/nccl/nccl_check.h"

#include "comm/detail.h"
#include "trainer/core/error.h"
#include "trainer/core/log.h"

namespace slim::comm::nccl {

void throwCudaError(cudaError_t code, const char* call, const char* file,
                    int line, int rank, const std::string& op) {
  throw CommError(detail::str("rank ", rank, " on ", detail::hostName(), ": ",
                              op, ": ", call, " returned ", static_cast<int>(code),
                              " (", cudaGetErrorString(code), ") at ", file,
                              ":", line),
                  rank, op);
}

void throwNcclError(ncclResult_t code, const char* call, const char* file,
                    int line, int rank, const std::string& op) {
  throw CommError(detail::str("rank ", rank, " on ", detail::hostName(), ": ",
                              op, ": ", call, " returned ", static_cast<int>(code),
                              " (", ncclGetErrorString(code), "; ",
                              ncclGetLastError(nullptr), ") at ", file, ":",
                              line),
                  rank, op);
}

void logCudaError(cudaError_t code, const char* call) {
  try {
    log::error(call, " returned ", static_cast<int>(code), " (",
               cudaGetErrorString(code), ")");
  } catch (...) {
  }
}

void logNcclError(ncclResult_t code, const char* call) {
  try {
    log::error(call, " returned ", static_cast<int>(code), " (",
               ncclGetErrorString(code), ")");
  } catch (...) {
  }
}

}  // namespace slim::comm::nccl
