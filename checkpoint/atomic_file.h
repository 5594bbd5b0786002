// Durable file primitives for the checkpoint commit protocol: write + fsync,
// rename, directory fsync. Plain POSIX calls so a full disk (ENOSPC) or an
// I/O error is seen exactly where it happens and reported with errno text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace slim::checkpoint {

/// Creates or truncates `path`, writes `n` bytes and fsyncs it. On any error
/// the partial file is removed.
/// @throws CheckpointError naming the file, the byte offset and strerror
void writeFileDurably(const std::filesystem::path& path, const void* data, size_t n);

/// Renames `from` to `to` atomically (same directory), replacing `to`.
/// @throws CheckpointError naming both paths
void renameFile(const std::filesystem::path& from, const std::filesystem::path& to);

/// fsyncs a directory so that renames inside it survive a crash.
/// @throws CheckpointError naming the directory
void syncDirectory(const std::filesystem::path& dir);

namespace detail {
/// Test-only fault injection: while set to N >= 0, writeFileDurably fails with
/// ENOSPC once a file would exceed N bytes (as on a full disk); -1 turns it
/// off. When unset, the environment variable SLIM_CKPT_FAIL_AFTER_BYTES
/// provides the same knob to whole-program tests.
void setWriteFailureAfter(int64_t bytes);
}  // namespace detail

}  // namespace slim::checkpoint
