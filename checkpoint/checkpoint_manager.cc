// Checkpoint directory management: commit protocol, retention, fallback load
// (protocol described in checkpoint_manager.h).
#include "checkpoint/checkpoint_manager.h"

#include <algorithm>
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

}  // namespace

CheckpointManager::CheckpointManager(fs::path dir, int keep_last) : dir_(std::move(dir)), keep_last_(keep_last) {
  if (keep_last < 0) SLIM_THROW(ConfigError, "checkpoint keep_last must be >= 0 (0 keeps all), got ", keep_last);
}

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
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool stale = (name.rfind("ckpt-", 0) == 0 && name.size() > 4 &&
                        name.compare(name.size() - 4, 4, ".tmp") == 0) ||
                       name == std::string(kLatestName) + ".tmp";
    if (!stale) continue;
    std::error_code rm;
    fs::remove(it->path(), rm);
    if (rm) log::warn("checkpoint: cannot remove stale ", it->path().string(), ": ", rm.message());
    else log::info("checkpoint: removed stale ", it->path().string(), " (an interrupted write)");
  }
}

fs::path CheckpointManager::save(const TrainingState& state) {
  SLIM_ENFORCE_GE(state.step, 0, "checkpoint step");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) SLIM_THROW(CheckpointError, "cannot create checkpoint directory ", dir_.string(), ": ", ec.message());
  removeStaleTemporaries();

  const fs::path final_path = pathFor(state.step);
  const fs::path tmp = final_path.string() + ".tmp";
  const int64_t created = state.created_unix > 0 ? state.created_unix : static_cast<int64_t>(std::time(nullptr));
  const std::vector<char> image = encodeState(state, final_path.string(), created);
  writeFileDurably(tmp, image.data(), image.size());
  renameFile(tmp, final_path);
  syncDirectory(dir_);

  const std::string pointer = final_path.filename().string() + "\n";
  const fs::path latest = dir_ / kLatestName;
  const fs::path latest_tmp = latest.string() + ".tmp";
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
  std::vector<fs::path> candidates;
  const fs::path latest = dir_ / kLatestName;
  std::error_code ec;
  if (fs::exists(latest, ec)) {
    std::ifstream in(latest);
    std::string name;
    std::getline(in, name);
    if (stepOf(name) >= 0 && fs::is_regular_file(dir_ / name, ec)) candidates.push_back(dir_ / name);
    else log::warn("checkpoint: ", latest.string(), " names '", name, "', which is not a checkpoint here; scanning");
  }
  std::vector<fs::path> all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (candidates.empty() || *it != candidates.front()) candidates.push_back(*it);
  if (candidates.empty()) return std::nullopt;

  std::string failures;
  for (size_t i = 0; i < candidates.size(); ++i) {
    try {
      TrainingState s = load(candidates[i]);
      if (i > 0) log::warn("checkpoint: resuming from older ", candidates[i].string(), " instead");
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
