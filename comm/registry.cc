// Backend registry and launch detection. This file and comm/nccl/ are the only
// places that test SLIM_HAVE_NCCL (STYLE anti-pattern A).
#include "comm/registry.h"

#include <cstdlib>
#include <functional>

#include "comm/local/local_communicator.h"
#include "comm/mpi/mpi_communicator.h"
#include "slim_config.h"
#include "trainer/core/log.h"
#if SLIM_HAVE_NCCL
#include "comm/nccl/nccl_communicator.h"
#endif

namespace slim::comm {
namespace {

/// Parses an integer environment variable; nullopt-like -1 when unset.
bool readEnvInt(const char* name, int* out) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 30)
    SLIM_THROW(ConfigError, "environment variable ", name, "='", v,
               "' is not a non-negative integer");
  *out = static_cast<int>(x);
  return true;
}

struct Backend {
  std::string name;
  bool available;
  std::string note;
  /// Whether "auto" picks it for this launch.
  std::function<bool(const LaunchInfo&)> enabled;
  std::function<std::unique_ptr<Communicator>(const LaunchInfo&,
                                              std::chrono::milliseconds)>
      create;
};

std::unique_ptr<Communicator> makeMpi(const LaunchInfo& launch,
                                      std::chrono::milliseconds timeout) {
  auto comm = std::make_unique<MpiCommunicator>(timeout);
  if (launch.underLauncher() && comm->size() != launch.size)
    log::warn("launcher says world size ", launch.size, " but MPI reports ",
              comm->size(), "; using MPI's");
  return comm;
}

/// The ordered backend list; "auto" takes the first enabled entry.
const std::vector<Backend>& backends() {
  static const std::vector<Backend> list = {
#if SLIM_HAVE_NCCL
      {"nccl", true, "NCCL over CUDA; requested explicitly (tensors are on host)",
       [](const LaunchInfo&) { return false; },
       [](const LaunchInfo& l, std::chrono::milliseconds t)
           -> std::unique_ptr<Communicator> {
         int devices = NcclCommunicator::deviceCount();
         if (devices == 0)
           SLIM_THROW(ConfigError, "backend 'nccl' needs a CUDA device, but "
                      "cudaGetDeviceCount found none on this host");
         return std::make_unique<NcclCommunicator>(makeMpi(l, t),
                                                   l.local_rank % devices, t);
       }},
#else
      {"nccl", false, "not compiled in (build without CUDA/NCCL)",
       [](const LaunchInfo&) { return false; }, nullptr},
#endif
      {"mpi", true, "Open MPI",
       // MPI's own variables always mean MPI; SLURM's only with > 1 task
       // (a batch shell has SLURM_PROCID too).
       [](const LaunchInfo& l) {
         return l.launcher == "mpirun" || l.launcher == "pmix" || l.size > 1;
       },
       makeMpi},
      {"local", true, "one rank, no communication",
       [](const LaunchInfo&) { return true; },
       [](const LaunchInfo& l, std::chrono::milliseconds t)
           -> std::unique_ptr<Communicator> {
         if (l.size > 1)
           SLIM_THROW(ConfigError, "backend 'local' cannot run world size ",
                      l.size, " (launched by ", l.launcher,
                      "); use backend 'mpi' or 'auto'");
         return std::make_unique<LocalCommunicator>(t);
       }},
  };
  return list;
}

}  // namespace

LaunchInfo detectLaunch() {
  LaunchInfo info;
  int rank = 0, size = 1, local = 0;
  if (readEnvInt("OMPI_COMM_WORLD_RANK", &rank)) {
    info.launcher = "mpirun";
    readEnvInt("OMPI_COMM_WORLD_SIZE", &size);
    if (!readEnvInt("OMPI_COMM_WORLD_LOCAL_RANK", &local)) local = rank;
  } else if (readEnvInt("SLURM_PROCID", &rank) &&
             readEnvInt("SLURM_NTASKS", &size)) {
    // SLURM_PROCID alone is also set inside sbatch's batch shell (size 1).
    info.launcher = "srun";
    if (!readEnvInt("SLURM_LOCALID", &local)) local = rank;
  } else if (readEnvInt("PMIX_RANK", &rank)) {
    info.launcher = "pmix";
    if (!readEnvInt("PMIX_SIZE", &size)) size = rank + 1;
    if (!readEnvInt("PMIX_LOCAL_RANK", &local)) local = rank;
  } else {
    rank = 0;
    size = 1;
  }
  if (size < 1 || rank >= size)
    SLIM_THROW(ConfigError, "launcher ", info.launcher, " reports rank ", rank,
               " outside world size ", size);
  info.rank = rank;
  info.size = size;
  info.local_rank = local;
  return info;
}

std::vector<BackendInfo> listBackends() {
  std::vector<BackendInfo> out;
  for (const auto& b : backends()) out.push_back({b.name, b.available, b.note});
  return out;
}

std::unique_ptr<Communicator> createCommunicator(
    const std::string& backend, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0)
    SLIM_THROW(ConfigError, "Distributed.timeout_s must be positive (got ",
               timeout.count(), " ms)");
  const LaunchInfo launch = detectLaunch();
  std::string names;
  for (const auto& b : backends()) {
    names += (names.empty() ? "" : "|") + b.name;
    if (backend == "auto" ? (b.available && b.enabled(launch))
                          : b.name == backend) {
      if (!b.available)
        SLIM_THROW(ConfigError, "Distributed.backend '", backend,
                   "' is not available in this build: ", b.note);
      return b.create(launch, timeout);
    }
  }
  SLIM_THROW(ConfigError, "unknown Distributed.backend '", backend,
             "' (expected auto|", names, ")");
}

}  // namespace slim::comm
