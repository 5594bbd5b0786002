// SaveDirLock: one training job per checkpoint directory.
//
// Two jobs sharing a directory would resume from each other's half-written
// checkpoints and overwrite each other's files. The trainer's rank 0 takes
// this lock on the checkpoint directory before resuming and holds it for the
// whole run. It is an advisory flock(2) on <dir>/.slimtrain.lock:
//   - exclusive and non-blocking: a second job fails at once with ConfigError
//     (exit code 2) naming the directory and the holder's PID and host;
//   - released by the kernel when the holder exits or dies (even SIGKILL), so
//     a crashed job never leaves a lock behind; the file itself stays (it is
//     never deleted, which would let two jobs lock two different inodes);
//   - not inherited: the descriptor is O_CLOEXEC (exec'd children) and is
//     closed in fork()ed children, so a child outliving the holder does not
//     keep the directory locked;
//   - file systems without flock support (some NFS/Lustre mounts: ENOLCK,
//     EOPNOTSUPP) get a warning and no lock rather than a failed run.
// The file holds one text line describing the holder, rewritten after locking:
//   "pid=<pid> host=<host name> started=<unix seconds> (<ISO-8601 UTC>)"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace slim::checkpoint {

class SaveDirLock {
 public:
  /// Name of the lock file inside the locked directory.
  static constexpr const char* kFileName = ".slimtrain.lock";

  /// Creates `dir` if missing and locks it.
  /// @throws ConfigError when another process holds the lock (the message
  ///         names the directory, the holder's PID and host, and what to do)
  /// @throws CheckpointError when the directory or the lock file cannot be
  ///         created or opened (permissions, read-only file system)
  explicit SaveDirLock(std::filesystem::path dir);
  /// Releases the lock. Never throws.
  ~SaveDirLock();

  SaveDirLock(const SaveDirLock&) = delete;
  SaveDirLock& operator=(const SaveDirLock&) = delete;

  /// True when the lock is held; false when the file system does not support
  /// flock and the run continues unlocked (a warning was logged).
  bool held() const { return fd_ >= 0; }
  const std::filesystem::path& dir() const { return dir_; }
  /// dir()/kFileName
  std::filesystem::path file() const { return dir_ / kFileName; }

  /// Releases the lock early (idempotent; the destructor calls it).
  void release() noexcept;

  /// The holder line this process writes: "pid=... host=... started=...".
  static std::string describeSelf();

 private:
  std::filesystem::path dir_;
  int fd_ = -1;
  pid_t owner_pid_ = -1;  // the fd belongs to this process only (see fork)
};

namespace detail {
/// Test-only: while set to a non-zero errno value, SaveDirLock treats flock()
/// as failing with it (e.g. ENOLCK as on NFS without lockd); 0 restores it.
void setFlockFailure(int err);
}  // namespace detail

}  // namespace slim::checkpoint
