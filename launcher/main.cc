// slimtrain: the executable. All work happens in launcher::run.
#include "launcher/omp_env.h"
#include "launcher/run.h"

int main(int argc, char** argv) {
  slim::launcher::reexecWithOmpWaitDefaults(argv);  // omp_env.h
  return slim::launcher::run(argc, argv);
}
