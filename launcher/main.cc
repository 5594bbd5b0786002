// slimtrain: the executable. All work happens in launcher::run.
#include "launcher/malloc_policy.h"
#include "launcher/omp_env.h"
#include "launcher/run.h"

int main(int argc, char** argv) {
  slim::launcher::reexecWithOmpWaitDefaults(argv);  // omp_env.h
  slim::launcher::mapLargeBuffers();                // malloc_policy.h
  return slim::launcher::run(argc, argv);
}
