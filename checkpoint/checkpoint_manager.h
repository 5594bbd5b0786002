// CheckpointManager: one directory of checkpoints with an atomic commit
// protocol, retention and validated loading with fallback.
//
// Commit protocol of save() (a crash at any point leaves a loadable state):
//   1. remove stale temporaries left by dead writers (rule below)
//   2. write tempPathFor(step) (the whole file image), fsync it
//   3. rename to ckpt-<step>.h5, fsync the directory
//   4. write latest.tmp.<writer> ("ckpt-<step>.h5\n"), fsync, rename to
//      latest, fsync dir
//   5. delete all but the newest keep_last ckpt-*.h5
// Only rank 0 calls save(); state is replicated. One job per directory is
// enforced by SaveDirLock (save_dir_lock.h), not by this class.
//
// Temporary names are unique per writer: <final>.tmp.<pid>.<n>.<host>, with
// <n> numbering the CheckpointManager objects of the process, so two writers
// (processes, hosts or managers in one process) never share a temporary.
// Stale-temporary rule (step 1): a ckpt-*.h5.tmp* or latest.tmp* is removed
//   - when it is this manager's own (same pid and n), or
//   - when its writer ran on this host and its pid is no longer alive, or
//     the pid is ours but the file predates this process (pid reuse), or
//   - when its writer cannot be checked (another host, or an old-style name
//     without a writer suffix) and the file was last modified before this
//     manager was constructed (the current run's start).
// A temporary of a live writer is never removed.
//
// Which checkpoint loadLatest() resumes from: the NEWEST VALID one, i.e. the
// highest step among ckpt-*.h5 that loads and validates; damaged files are
// skipped newest-first with a warning. The `latest` pointer is written as a
// commit marker for humans and tools, but never overrides that rule: when it
// names an older file than the newest valid one, a warning says so and the
// newest wins. (To resume from a specific file, set Checkpoint.resume to it.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/training_state.h"

namespace slim::checkpoint {

class CheckpointManager {
 public:
  /// Name of the pointer file holding the newest committed checkpoint's name.
  static constexpr const char* kLatestName = "latest";

  /// @param dir directory of the checkpoints (created on first save)
  /// @param keep_last number of newest checkpoints kept; 0 keeps all
  /// @throws ConfigError when keep_last < 0
  CheckpointManager(std::filesystem::path dir, int keep_last);

  /// Writes `state` as ckpt-<step>.h5 following the commit protocol above.
  /// created_unix is taken from the state, or the current time when it is 0.
  /// @return the path of the committed file
  /// @throws CheckpointError (disk full, I/O error, invalid state); earlier
  ///         checkpoints and `latest` are then untouched
  std::filesystem::path save(const TrainingState& state);

  /// Loads and fully validates one checkpoint file.
  /// @throws CheckpointError naming the file and dataset, expected vs found
  static TrainingState load(const std::filesystem::path& file);

  /// Loads the newest valid checkpoint (highest step that loads and
  /// validates), trying ckpt-*.h5 newest-first; each damaged file is skipped
  /// with a warning. `latest` is only cross-checked (see the rule above).
  /// @param loaded_from if not null, receives the path that was loaded
  /// @return nullopt when the directory holds no checkpoint at all
  /// @throws CheckpointError when checkpoints exist but none is usable
  std::optional<TrainingState> loadLatest(std::filesystem::path* loaded_from = nullptr) const;

  /// Committed checkpoint files (ckpt-<8+ digits>.h5), oldest step first;
  /// .tmp files and anything else in the directory are ignored.
  std::vector<std::filesystem::path> list() const;

  /// dir/ckpt-<step zero-padded to 8 digits>.h5
  std::filesystem::path pathFor(int64_t step) const;

  /// The temporary file save() writes before renaming it to pathFor(step):
  /// pathFor(step) + ".tmp.<pid>.<n>.<host>", unique to this manager object
  /// in this process. Stable across calls on the same object.
  std::filesystem::path tempPathFor(int64_t step) const;

  const std::filesystem::path& dir() const { return dir_; }
  int keepLast() const { return keep_last_; }

 private:
  void removeStaleTemporaries() const;
  void applyRetention(const std::filesystem::path& just_written) const;

  /// ".tmp.<pid>.<n>.<host>" for this manager in the calling process.
  std::string tempSuffix() const;

  std::filesystem::path dir_;
  int keep_last_;
  uint64_t instance_;                             // <n> of the temporary names
  std::filesystem::file_time_type constructed_;  // the run's start (stale rule)
};

}  // namespace slim::checkpoint
