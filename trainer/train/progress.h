// Progress reporting for long loops: a redrawn bar with rate and ETA when
// stderr is a terminal, plain log lines every `every` steps otherwise. Only
// rank 0 shows it (the caller constructs it with enabled = rank == 0).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace slim::train {

class Progress {
 public:
  /// @param total   number of steps (0 = unknown)
  /// @param label   shown before the bar ("train", "eval")
  /// @param enabled false on ranks other than 0
  /// @param every   plain-mode line interval in steps
  Progress(int64_t total, std::string label, bool enabled, int64_t every = 50);
  ~Progress();

  /// Marks step `done` (1-based count of finished steps) with a status text.
  void update(int64_t done, const std::string& status);
  /// Finishes the bar (newline on a terminal) at step `done` (the total when
  /// negative: a run that stopped early shows where it stopped).
  void finish(const std::string& status, int64_t done = -1);

 private:
  void draw(int64_t done, const std::string& status, bool final_line);

  int64_t total_;
  std::string label_;
  bool enabled_;
  bool tty_;
  int64_t every_;
  int64_t last_plain_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// "1h02m", "3m05s", "12s".
std::string formatDuration(double seconds);

}  // namespace slim::train
