// Durable file primitives for the checkpoint commit protocol: write + fsync,
// rename, directory fsync. Plain POSIX calls so a full disk (ENOSPC) or an
// I/O error is seen exactly where it happens and reported with errno text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>

#include "h5/h5.h"

namespace slim::checkpoint {

/// Creates or truncates `path`, writes `n` bytes and fsyncs it. On any error
/// the partial file is removed.
/// @throws CheckpointError naming the file, the byte offset and strerror
void writeFileDurably(const std::filesystem::path& path, const void* data, size_t n);

/// A file written at arbitrary offsets (an HDF5 file streamed by
/// h5::StreamFile), then made durable: the counterpart of writeFileDurably
/// for data that is never whole in memory, with the same fault injection
/// (ENOSPC once the file would exceed the limit) and errors. Any failure, and
/// destruction before commit(), removes the file.
class DurableFile final : public h5::ByteSink {
 public:
  /// Creates or truncates `path`.
  /// @throws CheckpointError "cannot create <path>: <strerror>"
  explicit DurableFile(std::filesystem::path path);
  ~DurableFile() override;
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  /// @throws CheckpointError "cannot write <path> (write at byte <offset>): <strerror>"
  ///         (the file is removed; reportFailure() then names the full size)
  void writeAt(uint64_t offset, const void* data, size_t n) override;
  /// Bytes past the end of the file read as zero.
  void readAt(uint64_t offset, void* out, size_t n) override;
  void resize(uint64_t size) override;
  /// After a failed write: writeFileDurably's message for the whole file,
  /// "cannot write <path> (write at byte <offset> of <size>): <strerror>".
  [[noreturn]] void reportFailure(uint64_t size, std::exception_ptr first) override;
  /// fsyncs and closes the file (errors as writeFileDurably's); it stays.
  void commit();

 private:
  /// Closes and removes the file, then throws "cannot write <path> (<what>
  /// at byte <at>[ of <total>]): <strerror>" (" of <total>" when total > 0).
  [[noreturn]] void fail(int err, const char* what, uint64_t at, uint64_t total = 0);

  std::filesystem::path path_;
  int fd_ = -1;
  int64_t limit_ = -1;   // fault injection, see detail::setWriteFailureAfter
  uint64_t size_ = 0;    // current file size
  int write_errno_ = 0;  // a failed write's errno and position
  uint64_t write_failed_at_ = 0;
};

/// Renames `from` to `to` atomically (same directory), replacing `to`.
/// @throws CheckpointError naming both paths
void renameFile(const std::filesystem::path& from, const std::filesystem::path& to);

/// fsyncs a directory so that renames inside it survive a crash.
/// @throws CheckpointError naming the directory
void syncDirectory(const std::filesystem::path& dir);

namespace detail {
/// Test-only fault injection: while set to N >= 0, writeFileDurably and
/// DurableFile fail with ENOSPC once a file would exceed N bytes (as on a
/// full disk); -1 turns it off. When unset, the environment variable SLIM_CKPT_FAIL_AFTER_BYTES
/// provides the same knob to whole-program tests.
void setWriteFailureAfter(int64_t bytes);
}  // namespace detail

}  // namespace slim::checkpoint
