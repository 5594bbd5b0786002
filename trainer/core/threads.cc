// OpenMP + Eigen thread configuration.
#include "trainer/core/threads.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <thread>

namespace slim {

void setComputeThreads(int n) {
  n = std::max(1, n);
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int computeThreads() { return omp_get_max_threads(); }

namespace {
int g_cores_per_rank = 0;  // 0: not set, all online cores
}  // namespace

void setCoresPerRank(int n) { g_cores_per_rank = std::max(1, n); }

int spareCores() {
  const int cores = g_cores_per_rank > 0 ? g_cores_per_rank
                                         : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(0, cores - computeThreads());
}

int defaultComputeThreads(int local_ranks) {
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / std::max(1, local_ranks));
}

}  // namespace slim
