// A tiny MPI job for failure tests: every rank runs allreduce steps; at step
// 3 the victim rank fails in the chosen way. The job must end non-zero and
// promptly (expect_job_fails.sh checks both):
//   kill  — the victim raises SIGKILL on itself (mpirun tears the job down);
//   throw — the victim throws; main catches, logs and calls abort();
//   hang  — the victim sleeps; peers time out with CommError, then abort().
// usage: slim_mpi_fail_helper kill|throw|hang VICTIM_RANK TIMEOUT_MS
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "comm/communicator.h"
#include "comm/registry.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s kill|throw|hang VICTIM TIMEOUT_MS\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const int victim = std::atoi(argv[2]);
  const auto timeout = std::chrono::milliseconds(std::atoi(argv[3]));
  std::unique_ptr<slim::comm::Communicator> comm;
  try {
    comm = slim::comm::createCommunicator("mpi", timeout);
    for (int step = 0; step < 10; ++step) {
      if (step == 3 && comm->rank() == victim) {
        if (mode == "kill") std::raise(SIGKILL);
        if (mode == "throw")
          throw std::runtime_error("injected failure on rank " + std::to_string(victim));
        if (mode == "hang") std::this_thread::sleep_for(std::chrono::minutes(10));
      }
      float v = 1.0f;
      slim::comm::CollectiveOptions o;
      o.tag = "step " + std::to_string(step);
      comm->allreduce(&v, 1, slim::DType::kF32, slim::comm::ReduceOp::kSum, o);
    }
    std::printf("[rank %d] finished all steps\n", comm->rank());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] fatal: %s\n", comm ? comm->rank() : -1, e.what());
    std::fflush(stderr);
    if (comm) comm->abort(e.what());
    return 1;
  }
}
