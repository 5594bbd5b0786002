// Checkpoint directory management: commit protocol, retention, fallback load
// (protocol described in checkpoint_manager.h).
#include "checkpoint/checkpoint_manager.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <regex>

#include "checkpoint/atomic_file.h"
#include "checkpoint/state_io.h"
#include "trainer/core/log.h"

namespace fs = std::filesystem;

namespace slim::checkpoint {

using ::slim::detail::str;

namespace {

/// Step of a committed checkpoint file name, or -1.
int64_t stepOf(const std::string& filename) {
  static const std::regex re(R"(ckpt-([0-9]{8,18})\.h5)");
  std::smatch m;
  if (!std::regex_match(filename, m, re)) return -1;
  return std::stoll(m[1].str());
}

/// When this process started (close enough: static initialization).
const fs::file_time_type g_process_start = fs::file_time_type::clock::now();

/// Tolerance for coarse file-system timestamps in the age comparisons.
constexpr auto kClockSlack = std::chrono::seconds(1);

std::atomic<uint64_t> g_next_instance{0};

/// This host's name as used in temporary names: [A-Za-z0-9._-] only.
const std::string& hostTag() {
  static const std::string tag = [] {
    char buf[256] = {};
    std::string h = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : "unknown-host";
    for (char& c : h)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) c = '_';
    return h;
  }();
  return tag;
}

/// A temporary of the commit protocol: ckpt-<step>.h5.tmp* or latest.tmp*.
bool isTemporary(const std::string& name) {
  static const std::regex re(R"((ckpt-[0-9]{8,18}\.h5|latest)\.tmp(\..*)?)");
  return std::regex_match(name, re);
}

/// Writer of a temporary named "<base>.tmp.<pid>.<n>.<host>"; pid < 0 when
/// the name carries none (old-style "<base>.tmp" or anything else).
struct Writer {
  long long pid = -1;
  uint64_t instance = 0;
  std::string host;
};

Writer writerOf(const std::string& name) {
  static const std::regex re(R"(.*\.tmp\.([0-9]{1,9})\.([0-9]{1,18})\.(.+))");
  std::smatch m;
  Writer w;
  if (!std::regex_match(name, m, re)) return w;
  w.pid = std::stoll(m[1].str());
  w.instance = std::stoull(m[2].str());
  w.host = m[3].str();
  return w;
}

bool processAlive(long long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

CheckpointManager::CheckpointManager(fs::path dir, int keep_last)
    : dir_(std::move(dir)),
      keep_last_(keep_last),
      instance_(g_next_instance.fetch_add(1)),
      constructed_(fs::file_time_type::clock::now()) {
  if (keep_last < 0) SLIM_THROW(ConfigError, "checkpoint keep_last must be >= 0 (0 keeps all), got ", keep_last);
}

std::string CheckpointManager::tempSuffix() const {
  return str(".tmp.", ::getpid(), ".", instance_, ".", hostTag());
}

fs::path CheckpointManager::tempPathFor(int64_t step) const { return pathFor(step).string() + tempSuffix(); }

fs::path CheckpointManager::pathFor(int64_t step) const {
  char name[40];
  std::snprintf(name, sizeof name, "ckpt-%08lld.h5", static_cast<long long>(step));
  return dir_ / name;
}

std::vector<fs::path> CheckpointManager::list() const {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const int64_t step = stepOf(it->path().filename().string());
    if (step >= 0 && it->is_regular_file(ec)) found.emplace_back(step, it->path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

void CheckpointManager::removeStaleTemporaries() const {
  const long long self = ::getpid();
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!isTemporary(name)) continue;
    std::error_code tec;
    const fs::file_time_type mtime = fs::last_write_time(it->path(), tec);
    if (tec) continue;  // vanished meanwhile (its writer renamed it)
    const Writer w = writerOf(name);
    const char* why = nullptr;
    if (w.pid > 0 && w.host == hostTag()) {
      if (w.pid == self && w.instance == instance_) why = "an interrupted write of this run";
      else if (w.pid == self && mtime + kClockSlack < g_process_start) why = "left by an earlier process";
      else if (w.pid != self && !processAlive(w.pid)) why = "its writer is no longer running";
    } else if (mtime + kClockSlack < constructed_) {
      why = w.pid > 0 ? "written on another host before this run started"
                      : "an interrupted write from before this run started";
    }
    if (why == nullptr) {
      log::debug("checkpoint: keeping ", it->path().string(), " (its writer may still be running)");
      continue;
    }
    std::error_code rm;
    fs::remove(it->path(), rm);
    if (rm) log::warn("checkpoint: cannot remove stale ", it->path().string(), ": ", rm.message());
    else log::info("checkpoint: removed stale ", it->path().string(), " (", why, ")");
  }
}

fs::path CheckpointManager::save(const TrainingState& state) {
  SLIM_ENFORCE_GE(state.step, 0, "checkpoint step");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) SLIM_THROW(CheckpointError, "cannot create checkpoint directory ", dir_.string(), ": ", ec.message());
  removeStaleTemporaries();

  const fs::path final_path = pathFor(state.step);
  const fs::path tmp = tempPathFor(state.step);
  const int64_t created = state.created_unix > 0 ? state.created_unix : static_cast<int64_t>(std::time(nullptr));
  {
    // Streamed into the temporary: no image of the file in memory.
    DurableFile out(tmp);
    encodeStateTo(state, final_path.string(), created, out);
    out.commit();
  }
  renameFile(tmp, final_path);
  syncDirectory(dir_);

  const std::string pointer = final_path.filename().string() + "\n";
  const fs::path latest = dir_ / kLatestName;
  const fs::path latest_tmp = latest.string() + tempSuffix();
  writeFileDurably(latest_tmp, pointer.data(), pointer.size());
  renameFile(latest_tmp, latest);
  syncDirectory(dir_);

  applyRetention(final_path);
  return final_path;
}

void CheckpointManager::applyRetention(const fs::path& just_written) const {
  if (keep_last_ == 0) return;
  std::vector<fs::path> all = list();
  const size_t keep = static_cast<size_t>(keep_last_);
  if (all.size() <= keep) return;
  for (size_t i = 0; i + keep < all.size(); ++i) {
    if (all[i] == just_written) continue;
    std::error_code ec;
    fs::remove(all[i], ec);
    if (ec) log::warn("checkpoint: cannot delete old ", all[i].string(), ": ", ec.message());
  }
}

TrainingState CheckpointManager::load(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    SLIM_THROW(CheckpointError, "checkpoint ", file.string(), " does not exist or is not a file");
  return decodeStateFile(file.string());
}

std::optional<TrainingState> CheckpointManager::loadLatest(fs::path* loaded_from) const {
  // The newest valid checkpoint wins; `latest` is only cross-checked.
  fs::path pointed;
  const fs::path latest = dir_ / kLatestName;
  std::error_code ec;
  if (fs::exists(latest, ec)) {
    std::ifstream in(latest);
    std::string name;
    std::getline(in, name);
    if (stepOf(name) >= 0 && fs::is_regular_file(dir_ / name, ec)) pointed = dir_ / name;
    else log::warn("checkpoint: ", latest.string(), " names '", name, "', which is not a checkpoint here; scanning");
  }
  std::vector<fs::path> candidates = list();
  std::reverse(candidates.begin(), candidates.end());  // newest first
  if (candidates.empty()) return std::nullopt;

  std::string failures;
  for (size_t i = 0; i < candidates.size(); ++i) {
    try {
      TrainingState s = load(candidates[i]);
      if (i > 0) log::warn("checkpoint: resuming from older ", candidates[i].string(), " instead");
      if (!pointed.empty() && stepOf(pointed.filename().string()) < stepOf(candidates[i].filename().string()))
        log::warn("checkpoint: ", latest.string(), " names ", pointed.filename().string(), " but the newer ",
                  candidates[i].filename().string(),
                  " is valid; resuming from the newest valid checkpoint (set Checkpoint.resume to a file "
                  "to resume from a specific one)");
      if (loaded_from) *loaded_from = candidates[i];
      return s;
    } catch (const CheckpointError& e) {
      log::warn("checkpoint: skipping damaged checkpoint: ", e.what());
      failures += str("\n  ", e.what());
    }
  }
  SLIM_THROW(CheckpointError, "no usable checkpoint in ", dir_.string(), " (", candidates.size(),
             " found, all damaged):", failures);
}

}  // namespace slim::checkpoint
