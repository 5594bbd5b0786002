// POSIX write/fsync/rename helpers with errno-rich errors and a test hook
// that simulates a full disk.
#include "checkpoint/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "trainer/core/error.h"

namespace slim::checkpoint {

using ::slim::detail::str;

namespace {

std::atomic<int64_t> g_fail_after{-2};  // -2: not set by a test, consult env

int64_t failAfter() {
  const int64_t v = g_fail_after.load();
  if (v != -2) return v;
  const char* env = std::getenv("SLIM_CKPT_FAIL_AFTER_BYTES");
  return env && *env ? std::strtoll(env, nullptr, 10) : -1;
}

/// Closes `fd` on scope exit unless released.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

namespace detail {
void setWriteFailureAfter(int64_t bytes) { g_fail_after.store(bytes < 0 ? -1 : bytes); }
}  // namespace detail

void writeFileDurably(const std::filesystem::path& path, const void* data, size_t n) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) SLIM_THROW(CheckpointError, "cannot create ", path.string(), ": ", std::strerror(errno));
  FdGuard guard{fd};
  const int64_t limit = failAfter();
  const auto* p = static_cast<const char*>(data);
  size_t done = 0;
  const auto fail = [&](int err, const char* what) {
    const std::string msg = str("cannot write ", path.string(), " (", what, " at byte ", done, " of ", n,
                                "): ", std::strerror(err));
    if (guard.fd >= 0) ::close(guard.fd);
    guard.fd = -1;
    std::error_code ec;
    std::filesystem::remove(path, ec);  // never leave a partial file behind
    SLIM_THROW(CheckpointError, msg);
  };
  while (done < n) {
    size_t chunk = std::min<size_t>(n - done, size_t{1} << 24);
    if (limit >= 0 && done + chunk > static_cast<size_t>(limit)) {
      chunk = static_cast<size_t>(limit) > done ? static_cast<size_t>(limit) - done : 0;
      if (chunk == 0) fail(ENOSPC, "write");
    }
    const ssize_t w = ::write(fd, p + done, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno, "write");
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) fail(errno, "fsync");
  guard.fd = -1;
  if (::close(fd) != 0) fail(errno, "close");
}

void renameFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    SLIM_THROW(CheckpointError, "cannot rename ", from.string(), " to ", to.string(), ": ", std::strerror(errno));
}

void syncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) SLIM_THROW(CheckpointError, "cannot open directory ", dir.string(), ": ", std::strerror(errno));
  FdGuard guard{fd};
  if (::fsync(fd) != 0 && errno != EINVAL)  // some file systems cannot fsync directories
    SLIM_THROW(CheckpointError, "cannot fsync directory ", dir.string(), ": ", std::strerror(errno));
}

}  // namespace slim::checkpoint
