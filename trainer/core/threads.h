// Compute threads inside one rank (OpenMP; also Eigen's, for the bench probe).
// Ranks x threads should equal the cores of a node: the launcher picks
// cores / ranks-on-this-node unless Global.num_threads says otherwise.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace slim {

/// Threads a parallel loop may use now: 1 inside an enclosing parallel
/// region, else OpenMP's maximum.
inline int loopThreads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/// Calls f(begin, end) on contiguous blocks of [0, n) of at least `grain`
/// items, one block per thread (serial when small). f must not throw.
/// Element-wise work gives the same bits for any split.
template <class F>
void parallelRange(int64_t n, int64_t grain, F&& f) {
  const int64_t t = std::min<int64_t>(loopThreads(), grain > 0 ? n / grain : n);
  if (t <= 1) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast <int>(t))
  {
    const int64_t k = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * k / nt, e = n * (k + 1) / nt;
    if (e > b) f(b, e);
  }
}

/// Sets the number of compute threads of this process (>= 1).
void setComputeThreads(int n);
/// Current number of compute threads.
int computeThreads();
/// max(1, online cores / local_ranks).
int defaultComputeThreads(int local_ranks);
/// Records how many cores this rank may use (the launcher sets it to
/// defaultComputeThreads(local ranks)); default: all online cores.
void setCoresPerRank(int n);
/// Cores of this rank not taken by compute threads: max(0, cores per rank -
/// computeThreads()). Decode workers default to this (at least 1).
int spareCores();

}  // namespace slim
