// POSIX write/fsync/rename helpers with errno-rich errors and a test hook
// that simulates a full disk.
#include "checkpoint/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

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

DurableFile::DurableFile(std::filesystem::path path) : path_(std::move(path)), limit_(failAfter()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    SLIM_THROW(CheckpointError, "cannot create ", path_.string(), ": ", std::strerror(errno));
}

DurableFile::~DurableFile() {
  if (fd_ < 0) return;  // committed, or failed and removed
  ::close(fd_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void DurableFile::fail(int err, const char* what, uint64_t at, uint64_t total) {
  const std::string msg =
      str("cannot write ", path_.string(), " (", what, " at byte ", at,
          total > 0 ? str(" of ", total) : std::string(), "): ", std::strerror(err));
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  std::filesystem::remove(path_, ec);  // never leave a partial file behind
  SLIM_THROW(CheckpointError, msg);
}

void DurableFile::reportFailure(uint64_t size, std::exception_ptr first) {
  if (write_errno_ == 0) std::rethrow_exception(first);
  fail(write_errno_, "write", write_failed_at_, size);
}

void DurableFile::writeAt(uint64_t offset, const void* data, size_t n) {
  if (fd_ < 0) SLIM_THROW(CheckpointError, "cannot write ", path_.string(), ": the file is closed");
  const auto* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < n) {
    const uint64_t at = offset + done;
    size_t chunk = std::min<size_t>(n - done, size_t{1} << 24);
    if (limit_ >= 0 && at + chunk > static_cast<uint64_t>(limit_)) {
      const auto limit = static_cast<uint64_t>(limit_);
      chunk = limit > at ? static_cast<size_t>(limit - at) : 0;
      if (chunk == 0) {  // the simulated disk is full there
        write_errno_ = ENOSPC, write_failed_at_ = limit;
        fail(ENOSPC, "write", limit);
      }
    }
    const ssize_t w = ::pwrite(fd_, p + done, chunk, static_cast<off_t>(at));
    if (w < 0) {
      if (errno == EINTR) continue;
      write_errno_ = errno, write_failed_at_ = at;
      fail(write_errno_, "write", at);
    }
    done += static_cast<size_t>(w);
  }
  size_ = std::max<uint64_t>(size_, offset + n);
}

void DurableFile::readAt(uint64_t offset, void* out, size_t n) {
  if (fd_ < 0)
    SLIM_THROW(CheckpointError, "cannot read back ", path_.string(), ": the file is closed");
  auto* p = static_cast<char*>(out);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(errno, "read back", offset + done);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  std::memset(p + done, 0, n - done);  // past the end of the file
}

void DurableFile::resize(uint64_t size) {
  if (fd_ < 0) SLIM_THROW(CheckpointError, "cannot write ", path_.string(), ": the file is closed");
  if (limit_ >= 0 && size > static_cast<uint64_t>(limit_))
    fail(ENOSPC, "write", static_cast<uint64_t>(limit_), size);
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) fail(errno, "truncate", size, size);
  size_ = size;
}

void DurableFile::commit() {
  if (fd_ < 0) SLIM_THROW(CheckpointError, "cannot write ", path_.string(), ": the file is closed");
  if (::fsync(fd_) != 0) fail(errno, "fsync", size_, size_);
  const int fd = fd_;
  fd_ = -1;  // closed either way
  if (::close(fd) != 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    SLIM_THROW(CheckpointError, "cannot write ", path_.string(), " (close at byte ", size_, " of ",
               size_, "): ", std::strerror(err));
  }
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
