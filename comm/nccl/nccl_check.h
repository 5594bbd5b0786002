// Checked wrappers for CUDA runtime and NCCL calls (STYLE rule 23): failures
// become CommError with rank, host, operation and the library's own detail
// (cudaGetErrorString, ncclGetErrorString + ncclGetLastError).
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

namespace slim::comm::nccl {

[[noreturn]] void throwCudaError(cudaError_t code, const char* call,
                                 const char* file, int line, int rank,
                                 const std::string& op);
[[noreturn]] void throwNcclError(ncclResult_t code, const char* call,
                                 const char* file, int line, int rank,
                                 const std::string& op);
/// Logs instead of throwing (destructors).
void logCudaError(cudaError_t code, const char* call);
void logNcclError(ncclResult_t code, const char* call);

}  // namespace slim::comm::nccl

#define SLIM_CUDA_CHECK(call, rank, op)                                       \
  do {                                                                        \
    cudaError_t slim_cuda_rc_ = (call);                                       \
    if (slim_cuda_rc_ != cudaSuccess)                                         \
      ::slim::comm::nccl::throwCudaError(slim_cuda_rc_, #call, __FILE__,      \
                                         __LINE__, (rank), (op));             \
  } while (0)

#define SLIM_NCCL_CHECK(call, rank, op)                                       \
  do {                                                                        \
    ncclResult_t slim_nccl_rc_ = (call);                                      \
    if (slim_nccl_rc_ != ncclSuccess)                                         \
      ::slim::comm::nccl::throwNcclError(slim_nccl_rc_, #call, __FILE__,      \
                                         __LINE__, (rank), (op));             \
  } while (0)

#define SLIM_CUDA_CHECK_NOTHROW(call)                                         \
  do {                                                                        \
    cudaError_t slim_cuda_rc_ = (call);                                       \
    if (slim_cuda_rc_ != cudaSuccess)                                         \
      ::slim::comm::nccl::logCudaError(slim_cuda_rc_, #call);                 \
  } while (0)

#define SLIM_NCCL_CHECK_NOTHROW(call)                                         \
  do {                                                                        \
    ncclResult_t slim_nccl_rc_ = (call);                                      \
    if (slim_nccl_rc_ != ncclSuccess)                                         \
      ::slim::comm::nccl::logNcclError(slim_nccl_rc_, #call);                 \
  } while (0)
