// Rank-prefixed logging to stderr; one write() call per line so lines from
// different ranks do not interleave mid-line.
#include "trainer/core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace slim::log {
namespace {
std::atomic<int> g_rank{0};
std::atomic<int> g_world{1};
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;
}  // namespace

void setRank(int r, int world) {
  g_rank = r;
  g_world = world;
}
int rank() { return g_rank; }
void setLevel(Level level) { g_level = static_cast<int>(level); }

void write(Level level, const std::string& msg) {
  if (static_cast<int>(level) < g_level) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  std::string line;
  if (g_world > 1 || g_rank > 0) line = "[rank " + std::to_string(g_rank.load()) + "] ";
  if (level != Level::kInfo) line += std::string(kNames[static_cast<int>(level)]) + ": ";
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace slim::log
