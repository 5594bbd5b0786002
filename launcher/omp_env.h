// How idle OpenMP threads wait, set before libgomp reads it. libgomp reads
// OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it loads, so a process that
// wants another default sets it and re-executes itself once.
//
// slimtrain runs one parallel region per kernel, hundreds per training step.
// Threads that spin between regions save the wake-ups when the process has
// its cores to itself, and collapse when processes share them: under
// `ctest -j2` on 2 cores (the pretraining e2e test beside the 2-rank resume
// test, a niced one-job build also running) with GOMP_SPINCOUNT=100000 both
// were still running after 480 s; passive they take ~210 s and ~110 s. So
// the default is passive; on a machine the job has to itself,
// GOMP_SPINCOUNT=100000 is faster (mobilenet_tiny's ACT step at 1 rank x 2
// threads: 711-951 img/s passive, 921-1454 img/s with it, three interleaved
// rounds, 2026-11-26), and scripts/bench runs both frameworks with it.
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace slim::launcher {

/// Unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: sets
/// OMP_WAIT_POLICY=passive and re-executes this program with `argv` (returns
/// only if that fails, and then the run goes on with libgomp's defaults).
inline void reexecWithOmpWaitDefaults(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace slim::launcher
