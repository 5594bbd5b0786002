// Terminal progress bar with ETA; plain lines when not attached to a terminal.
#include "trainer/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "trainer/core/log.h"

namespace slim::train {

std::string formatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  long t = std::lround(s);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

Progress::Progress(int64_t total, std::string label, bool enabled, int64_t every)
    : total_(total), label_(std::move(label)),
      enabled_(enabled && log::level() <= log::Level::kInfo),
      tty_(isatty(STDERR_FILENO) != 0), every_(every > 0 ? every : 50),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (enabled_ && tty_ && !finished_) {
    std::fputc('\n', stderr);
    log::setStatusLine(false);
  }
}

void Progress::update(int64_t done, const std::string& status) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    // Redraw at most 10 times a second.
    if (now - last_draw_ < std::chrono::milliseconds(100) && done != total_) return;
    last_draw_ = now;
    draw(done, status, false);
  } else if (done - last_plain_ >= every_ || done == total_) {
    last_plain_ = done;
    draw(done, status, true);
  }
}

void Progress::finish(const std::string& status, int64_t done) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(done < 0 ? total_ : done, status, true);
}

void Progress::draw(int64_t done, const std::string& status, bool final_line) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? done / el : 0;
  double eta = (rate > 0 && total_ > 0) ? (total_ - done) / rate : NAN;
  char head[160];
  if (total_ > 0) {
    int pct = static_cast<int>(100.0 * done / total_);
    std::snprintf(head, sizeof head, "%s %3d%% %lld/%lld [%s<%s]", label_.c_str(), pct,
                  static_cast<long long>(done), static_cast<long long>(total_),
                  formatDuration(el).c_str(), formatDuration(eta).c_str());
  } else {
    std::snprintf(head, sizeof head, "%s %lld [%s]", label_.c_str(),
                  static_cast<long long>(done), formatDuration(el).c_str());
  }
  if (tty_) {
    std::string bar;
    if (total_ > 0) {
      const int width = 24;
      int fill = static_cast<int>(width * static_cast<double>(done) / total_);
      fill = std::clamp(fill, 0, width);
      bar.reserve(width + 3);
      bar.push_back('|');
      bar.append(static_cast<size_t>(fill), '#');
      bar.append(static_cast<size_t>(width - fill), ' ');
      bar.append("| ");
    }
    std::fprintf(stderr, "\r\033[K%s%s %s", bar.c_str(), head, status.c_str());
    if (final_line) std::fputc('\n', stderr);
    log::setStatusLine(!final_line);
  } else {
    std::fprintf(stderr, "%s %s\n", head, status.c_str());
  }
  std::fflush(stderr);
}

}  // namespace slim::train
