// How idle OpenMP threads wait, set before libgomp reads it. libgomp reads
// OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it loads, so a process that
// wants another default sets it and re-executes itself once.
//
// slimtrain runs one parallel region per kernel, hundreds per training step,
// so a thread that sleeps at once (passive) pays a wake-up at nearly every
// region, and one that spins without bound loses whole scheduler slices on a
// shared or oversubscribed machine. The default is a bounded spin. Measured
// here (2 cores, shared host, three interleaved rounds, 2026-11-26): the ACT
// step of mobilenet_tiny at 1 rank x 2 threads ran 711-951 img/s passive and
// 921-1454 img/s with GOMP_SPINCOUNT=100000; 2 ranks x 2 threads on the 2
// cores (oversubscribed) 832-918 passive, 830-867 with 30000 and 766-886
// with libgomp's default 300000.
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace slim::launcher {

/// Unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: sets
/// GOMP_SPINCOUNT=100000 and re-executes this program with `argv` (returns
/// only if that fails, and then the run goes on with libgomp's defaults).
inline void reexecWithOmpWaitDefaults(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return;
  setenv("GOMP_SPINCOUNT", "100000", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace slim::launcher
