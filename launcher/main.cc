// slimtrain: the executable. All work happens in launcher::run.
#include <unistd.h>

#include <cstdlib>

#include "launcher/run.h"

int main(int argc, char** argv) {
  // OpenMP threads that busy-wait between parallel regions lose whole
  // scheduler slices when the machine is shared (measured: 2 threads 5x slower
  // than 1). libgomp reads OMP_WAIT_POLICY when it loads, so set it and
  // re-execute once; a user's explicit setting wins.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: carry on
  }
  return slim::launcher::run(argc, argv);
}
