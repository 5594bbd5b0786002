// Logging with a [rank N] prefix on every line from ranks other than 0 and
// rank-0-only banners (STYLE rules 27). The launcher sets the rank once.
#pragma once

#include <string>

#include "trainer/core/error.h"

namespace slim::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

/// Sets this process's rank and world size (prefix and rank-0 filtering).
void setRank(int rank, int world);
int rank();
/// Lines below `level` are dropped.
void setLevel(Level level);
/// The current level.
Level level();
/// Tells the logger that a redrawn status line (a terminal progress bar,
/// no newline yet) is on screen: the next log line erases it first.
void setStatusLine(bool active);

/// Writes one line to stderr: "[rank N] LEVEL message" (prefix only when world > 1
/// or rank > 0).
void write(Level level, const std::string& msg);

template <class... Args>
void info(const Args&... a) { write(Level::kInfo, detail::str(a...)); }
template <class... Args>
void warn(const Args&... a) { write(Level::kWarn, detail::str(a...)); }
template <class... Args>
void error(const Args&... a) { write(Level::kError, detail::str(a...)); }
template <class... Args>
void debug(const Args&... a) { write(Level::kDebug, detail::str(a...)); }
/// Info from rank 0 only.
template <class... Args>
void info0(const Args&... a) {
  if (rank() == 0) write(Level::kInfo, detail::str(a...));
}

/// Warning from rank 0 only.
template <class... Args>
void warn0(const Args&... a) {
  if (rank() == 0) write(Level::kWarn, detail::str(a...));
}

}  // namespace slim::log
