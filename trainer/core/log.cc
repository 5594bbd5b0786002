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
bool g_status_line = false;  // a progress bar without newline is on screen (under g_mu)
std::mutex g_mu;
}  // namespace

void setRank(int r, int world) {
  g_rank = r;
  g_world = world;
}
int rank() { return g_rank; }
void setLevel(Level level) { g_level = static_cast<int>(level); }

void setStatusLine(bool active) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_status_line = active;
}

Level level() { return static_cast<Level>(g_level.load()); }

void write(Level level, const std::string& msg) {
  if (static_cast<int>(level) < g_level) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  std::string line;
  if (g_world > 1 || g_rank > 0) line = "[rank " + std::to_string(g_rank.load()) + "] ";
  if (level != Level::kInfo) line += std::string(kNames[static_cast<int>(level)]) + ": ";
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  // A progress bar drawn without a newline is erased first, so the line
  // starts at column 0; the bar is redrawn at its next update.
  if (g_status_line) {
    std::fputs("\r\033[K", stderr);
    g_status_line = false;
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace slim::log
