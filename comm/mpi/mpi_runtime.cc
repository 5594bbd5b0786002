// MPI init/finalize, once per process (see mpi_runtime.h).
#include "comm/mpi/mpi_runtime.h"

#include <atomic>

#include "comm/mpi/mpi_check.h"
#include "trainer/core/log.h"

namespace slim::comm {
namespace {
std::atomic<bool> g_failed{false};
}

MpiRuntime::MpiRuntime() {
  int initialized = 0;
  SLIM_MPI_CHECK(MPI_Initialized(&initialized), -1, "MPI_Initialized");
  if (initialized) return;  // the program (e.g. a test main) owns MPI
  int provided = 0;
  SLIM_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED,
                                 &provided),
                 -1, "MPI_Init_thread");
  owns_ = true;
  if (provided < MPI_THREAD_SERIALIZED)
    log::warn("MPI provides thread level ", provided,
              " < MPI_THREAD_SERIALIZED; keep collectives on one thread");
  // Errors on the world communicator come back as codes, not aborts.
  SLIM_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), -1,
                 "MPI_Comm_set_errhandler");
}

MpiRuntime::~MpiRuntime() {
  if (!owns_) return;
  int finalized = 0;
  SLIM_MPI_CHECK_NOTHROW(MPI_Finalized(&finalized));
  if (finalized) return;
  if (g_failed.load()) {
    // Peers may be waiting in a collective we abandoned: take the job down.
    SLIM_MPI_CHECK_NOTHROW(MPI_Abort(MPI_COMM_WORLD, 1));
    return;
  }
  SLIM_MPI_CHECK_NOTHROW(MPI_Finalize());
}

MpiRuntime& MpiRuntime::instance() {
  static MpiRuntime runtime;  // destroyed at exit: finalizes
  return runtime;
}

void MpiRuntime::ensureInitialized() { instance(); }

bool MpiRuntime::active() {
  int initialized = 0, finalized = 0;
  SLIM_MPI_CHECK_NOTHROW(MPI_Initialized(&initialized));
  SLIM_MPI_CHECK_NOTHROW(MPI_Finalized(&finalized));
  return initialized && !finalized;
}

void MpiRuntime::markFailed() noexcept { g_failed.store(true); }
bool MpiRuntime::failed() noexcept { return g_failed.load(); }

}  // namespace slim::comm
