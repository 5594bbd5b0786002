// MpiRuntime: MPI's process-wide lifetime as RAII. The first MPI communicator
// initialises MPI (MPI_Init_thread, SERIALIZED) unless the program already
// did; the runtime finalizes at exit only what it initialised. After a comm
// failure it aborts instead of finalizing, because MPI_Finalize waits for
// peers that may be gone and would hang the job.
#pragma once

#include <string>

namespace slim::comm {

class MpiRuntime {
 public:
  /// Initialises MPI once per process if nobody has. Thread-safe.
  /// @throws CommError when MPI_Init_thread fails
  static void ensureInitialized();
  /// @return true when MPI is initialised and not yet finalized
  static bool active();
  /// Records that a collective failed: at exit, MPI_Abort replaces MPI_Finalize.
  static void markFailed() noexcept;
  /// @return true after markFailed()
  static bool failed() noexcept;

  ~MpiRuntime();

 private:
  MpiRuntime();
  static MpiRuntime& instance();
  bool owns_ = false;  ///< we called MPI_Init_thread, so we finalize
};

}  // namespace slim::comm
