// SLIM_PROFILE=1 / 2: per-op-type (per-node) forward and backward CPU time
// of every executor in the process, printed to stderr at exit. Internal to
// executor.cc.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

namespace slim::graph::detail {

// Profile clock: CPU time of the whole process (all threads), which is far
// less sensitive to other load on the machine than wall time. With
// SLIM_PROFILE_CLOCK=wall, wall time instead (what shows a serial op at two
// threads: its CPU time is the same as a well threaded one's).
inline bool profileWallClock() {
  static const bool wall = [] {
    const char* e = std::getenv("SLIM_PROFILE_CLOCK");
    return e && std::string(e) == "wall";
  }();
  return wall;
}

struct ProfClock {
  using time_point = double;
  static double now() {
    timespec ts;
    clock_gettime(profileWallClock() ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
};

// Process-wide per-op-type CPU-time table, enabled by SLIM_PROFILE=1 and
// printed to stderr at exit. Off by default: one getenv per executor.
struct Profile {
  struct Row { double fwd = 0, bwd = 0; long calls = 0; };
  std::map<std::string, Row> rows;
  ~Profile() {
    double tf = 0, tb = 0;
    for (const auto& kv : rows) { tf += kv.second.fwd; tb += kv.second.bwd; }
    std::fprintf(stderr, "SLIM_PROFILE %-28s %10s %10s %8s\n", "op",
                 profileWallClock() ? "fwd_wall_ms" : "fwd_cpu_ms",
                 profileWallClock() ? "bwd_wall_ms" : "bwd_cpu_ms", "calls");
    for (const auto& kv : rows)
      std::fprintf(stderr, "SLIM_PROFILE %-28s %10.1f %10.1f %8ld\n", kv.first.c_str(),
                   kv.second.fwd * 1e3, kv.second.bwd * 1e3, kv.second.calls);
    std::fprintf(stderr, "SLIM_PROFILE %-28s %10.1f %10.1f\n", "total", tf * 1e3, tb * 1e3);
  }
};

// SLIM_PROFILE=2 keys rows by node ("type name") instead of op type.
inline bool profilePerNode() {
  const char* e = std::getenv("SLIM_PROFILE");
  return e && std::string(e) == "2";
}

inline Profile* profileIfEnabled() {
  const char* e = std::getenv("SLIM_PROFILE");
  if (!e || !*e || std::string(e) == "0") return nullptr;
  static Profile p;
  return &p;
}

inline double secondsSince(double t0) { return ProfClock::now() - t0; }

}  // namespace slim::graph::detail
