// Error text for SLIM_MPI_CHECK.
#include "comm/mpi/mpi_check.h"

#include "comm/detail.h"
#include "comm/mpi/mpi_runtime.h"
#include "trainer/core/error.h"
#include "trainer/core/log.h"

namespace slim::comm::mpi {

std::string errorString(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    return "unknown MPI error";
  return std::string(text, len);
}

void throwMpiError(int code, const char* call, const char* file, int line,
                   int rank, const std::string& op) {
  MpiRuntime::markFailed();
  throw CommError(detail::str("rank ", rank, " on ", detail::hostName(), ": ",
                              op, ": ", call, " returned ", code, " (",
                              errorString(code), ") at ", file, ":", line),
                  rank, op);
}

void logMpiError(int code, const char* call, const char* file, int line) {
  try {
    log::error(call, " returned ", code, " (", errorString(code), ") at ",
               file, ":", line);
  } catch (...) {
  }
}

}  // namespace slim::comm::mpi
