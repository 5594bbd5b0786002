// The one checked wrapper every MPI call goes through (STYLE rule 23): a
// failure becomes a CommError carrying rank, host, the operation and
// MPI_Error_string. Communicators set MPI_ERRORS_RETURN so codes reach here.
#pragma once

#include <mpi.h>

#include <string>

namespace slim::comm::mpi {

/// Text of an MPI error code (MPI_Error_string).
std::string errorString(int code);

/// Throws CommError: "rank R on HOST: OP: CALL returned CODE (TEXT) at
/// FILE:LINE". Also marks the MPI runtime failed (see MpiRuntime).
[[noreturn]] void throwMpiError(int code, const char* call, const char* file,
                                int line, int rank, const std::string& op);

/// Logs instead of throwing (destructors, abort paths).
void logMpiError(int code, const char* call, const char* file, int line);

}  // namespace slim::comm::mpi

/// Runs an MPI call; on failure throws CommError naming `rank` and `op`.
#define SLIM_MPI_CHECK(call, rank, op)                                      \
  do {                                                                      \
    int slim_mpi_rc_ = (call);                                              \
    if (slim_mpi_rc_ != MPI_SUCCESS)                                        \
      ::slim::comm::mpi::throwMpiError(slim_mpi_rc_, #call, __FILE__,       \
                                       __LINE__, (rank), (op));             \
  } while (0)

/// Runs an MPI call in a context that must not throw; failures are logged.
#define SLIM_MPI_CHECK_NOTHROW(call)                                        \
  do {                                                                      \
    int slim_mpi_rc_ = (call);                                              \
    if (slim_mpi_rc_ != MPI_SUCCESS)                                        \
      ::slim::comm::mpi::logMpiError(slim_mpi_rc_, #call, __FILE__,         \
                                     __LINE__);                             \
  } while (0)
