// CheckpointManager: one directory of checkpoints with an atomic commit
// protocol, retention and validated loading with fallback.
//
// Commit protocol of save() (a crash at any point leaves a loadable state):
//   1. remove stale ckpt-*.h5.tmp left by a killed writer
//   2. write ckpt-<step>.h5.tmp (the whole file image), fsync it
//   3. rename to ckpt-<step>.h5, fsync the directory
//   4. write latest.tmp ("ckpt-<step>.h5\n"), fsync, rename to latest, fsync dir
//   5. delete all but the newest keep_last ckpt-*.h5
// `latest` is the commit marker; loadLatest() trusts it first and otherwise
// falls back newest-first. Only rank 0 calls save(); state is replicated.
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

  /// Loads the newest usable checkpoint: the one `latest` names, else the
  /// others newest-first; each damaged file is skipped with a warning.
  /// @param loaded_from if not null, receives the path that was loaded
  /// @return nullopt when the directory holds no checkpoint at all
  /// @throws CheckpointError when checkpoints exist but none is usable
  std::optional<TrainingState> loadLatest(std::filesystem::path* loaded_from = nullptr) const;

  /// Committed checkpoint files (ckpt-<8+ digits>.h5), oldest step first;
  /// .tmp files and anything else in the directory are ignored.
  std::vector<std::filesystem::path> list() const;

  /// dir/ckpt-<step zero-padded to 8 digits>.h5
  std::filesystem::path pathFor(int64_t step) const;

  const std::filesystem::path& dir() const { return dir_; }
  int keepLast() const { return keep_last_; }

 private:
  void removeStaleTemporaries() const;
  void applyRetention(const std::filesystem::path& just_written) const;

  std::filesystem::path dir_;
  int keep_last_;
};

}  // namespace slim::checkpoint
