// comm_bench: allreduce bandwidth of GradReducer (bucketed), the inline
// reducer and one plain MPI_Allreduce of the same bytes, for scripts/bench.
// Run under mpirun: `mpirun -np 2 comm_bench [--bucket-bytes B] [--iters N]
// [--max-bytes M]`. Prints algBw and busBw = algBw*2(n-1)/n (rank 0 only).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "comm/grad_reducer.h"
#include "comm/mpi/mpi_check.h"
#include "comm/mpi/mpi_communicator.h"

namespace {

using slim::comm::MpiCommunicator;

/// Splits `total` floats into gradient-like pieces (a mix of big and small).
std::vector<size_t> gradSizes(size_t total) {
  std::vector<size_t> sizes;
  const size_t pattern[] = {64, 9216, 256, 147456, 1024, 36864, 16};
  size_t used = 0;
  for (size_t i = 0; used < total; ++i) {
    size_t s = std::min(pattern[i % 7], total - used);
    sizes.push_back(s);
    used += s;
  }
  return sizes;
}

/// Seconds per iteration of `fn`, the slowest rank's average.
template <class F>
double timeIt(MpiCommunicator& comm, int iters, F fn) {
  for (int i = 0; i < 2; ++i) fn();  // warm-up
  comm.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                 .count() / iters;
  double slowest = 0;
  SLIM_MPI_CHECK(MPI_Allreduce(&s, &slowest, 1, MPI_DOUBLE, MPI_MAX,
                               comm.handle()),
                 comm.rank(), "bench timing");
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  size_t bucket_bytes = 4 << 20, max_bytes = 64 << 20;
  int iters = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--bucket-bytes")) bucket_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--max-bytes")) max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  try {
    MpiCommunicator comm;
    const int n = comm.size();
    if (comm.rank() == 0)
      std::printf("# comm_bench: %d ranks, bucket %zu bytes, %d iters\n"
                  "%12s %10s %12s %12s %12s\n", n, bucket_bytes, iters, "bytes",
                  "impl", "time_us", "algBw_GB/s", "busBw_GB/s");
    for (size_t bytes = 1 << 16; bytes <= max_bytes; bytes *= 4) {
      const size_t floats = bytes / sizeof(float);
      std::vector<float> flat(floats, 1.0f);
      std::vector<size_t> sizes = gradSizes(floats);
      slim::comm::GradReducer bucketed(comm, bucket_bytes);
      slim::comm::InlineGradReducer inline_reducer(comm);
      auto runReducer = [&](slim::comm::Reducer& r) {
        size_t off = 0;
        for (size_t k = 0; k < sizes.size(); ++k) {
          r.add(std::string("g").append(std::to_string(k)), flat.data() + off, sizes[k]);
          off += sizes[k];
        }
        r.finalize();
      };
      struct Row { const char* name; double s; };
      Row rows[] = {
          {"mpi", timeIt(comm, iters, [&] {
             SLIM_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flat.data(),
                                          static_cast<int>(floats), MPI_FLOAT,
                                          MPI_SUM, comm.handle()),
                            comm.rank(), "bench allreduce");
           })},
          {"bucketed", timeIt(comm, iters, [&] { runReducer(bucketed); })},
          {"inline", timeIt(comm, iters, [&] { runReducer(inline_reducer); })},
      };
      if (comm.rank() == 0)
        for (const Row& r : rows) {
          double alg = bytes / r.s / 1e9;
          std::printf("%12zu %10s %12.1f %12.3f %12.3f\n", bytes, r.name,
                      r.s * 1e6, alg, slim::comm::allreduceBusBandwidth(alg, n));
        }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "comm_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
