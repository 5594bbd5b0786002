// Runtime choice of the comm backend (STYLE rule 8): an ordered list of
// backends, each saying whether it is compiled in (available) and whether it
// fits this launch (enabled). Also launch detection from the environment
// variables mpirun, srun and PMIx set (DESIGN.md §6).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace slim::comm {

/// How this process was started.
struct LaunchInfo {
  std::string launcher = "plain";  ///< "mpirun", "srun", "pmix" or "plain"
  int rank = 0;                    ///< global rank (0 when plain)
  int size = 1;                    ///< world size (1 when plain)
  int local_rank = 0;              ///< rank on this node (picks the GPU)
  /// @return true when a launcher set rank variables (MPI should be used)
  bool underLauncher() const { return launcher != "plain"; }
};

/// Reads OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK}, then SLURM_{PROCID,NTASKS,
/// LOCALID}, then PMIX_RANK (+ PMIX_SIZE/OMPI size if present).
/// @throws ConfigError when a variable is set but is not a valid integer
LaunchInfo detectLaunch();

/// One entry of the backend list.
struct BackendInfo {
  std::string name;  ///< "local", "mpi", "nccl"
  bool available;    ///< compiled into this binary
  std::string note;  ///< why not available, or what it needs
};

/// @return every known backend, in the order "auto" considers them
std::vector<BackendInfo> listBackends();

/// Creates the communicator for `backend`:
///  - "auto": "mpi" under mpirun/PMIx or with world size > 1, else "local";
///  - "local": world size 1 (throws ConfigError if a launcher says size > 1);
///  - "mpi": Open MPI (a plain launch gives an MPI world of size 1);
///  - "nccl": NCCL bootstrapped over MPI (ConfigError when not compiled in).
/// @param backend one of auto|local|mpi|nccl (YAML Distributed.backend)
/// @param timeout default timeout of every collective (Distributed.timeout_s)
/// @throws ConfigError for an unknown or unavailable backend
std::unique_ptr<Communicator> createCommunicator(
    const std::string& backend,
    std::chrono::milliseconds timeout = kDefaultTimeout);

}  // namespace slim::comm
