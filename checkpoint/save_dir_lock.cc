// flock(2)-based exclusive lock on a checkpoint directory (see save_dir_lock.h).
#include "checkpoint/save_dir_lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include "trainer/core/error.h"
#include "trainer/core/log.h"

namespace fs = std::filesystem;

namespace slim::checkpoint {

namespace {

const std::time_t g_process_start = std::time(nullptr);

std::atomic<int> g_fake_flock_errno{0};  // test hook, see detail::setFlockFailure

// Descriptors of the locks held by this process. A fork()ed child closes its
// copies (an flock belongs to the open file description, which a child
// shares) so that the lock goes away when the holder dies, whatever its
// children do. Lock-free because the child handler runs right after fork.
// Slots hold fd + 1 (0: empty, the value-initialized state).
constexpr size_t kMaxLocks = 16;
std::array<std::atomic<int>, kMaxLocks> g_lock_fds{};

void closeLockFdsInChild() {
  for (auto& s : g_lock_fds) {
    const int v = s.exchange(0);
    if (v > 0) ::close(v - 1);
  }
}

void registerFd(int fd) {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(nullptr, nullptr, closeLockFdsInChild); });
  for (auto& s : g_lock_fds) {
    int expected = 0;
    if (s.compare_exchange_strong(expected, fd + 1)) return;
  }
  // More than kMaxLocks locks at once: still correct except after fork().
}

void unregisterFd(int fd) {
  for (auto& s : g_lock_fds) {
    int expected = fd + 1;
    if (s.compare_exchange_strong(expected, 0)) return;
  }
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

/// Value of "key=..." (up to the next space) in `line`, or "".
std::string field(const std::string& line, const std::string& key) {
  const size_t at = line.find(key + "=");
  if (at == std::string::npos) return "";
  const size_t from = at + key.size() + 1;
  return line.substr(from, line.find(' ', from) - from);
}

std::string readHolder(int fd) {
  char buf[512];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

bool flockUnsupported(int err) {
  return err == ENOLCK || err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS;
}

}  // namespace

namespace detail {
/// Test-only: while set to a non-zero errno, flock() is treated as failing
/// with it (0 restores the real call).
void setFlockFailure(int err) { g_fake_flock_errno.store(err); }
}  // namespace detail

std::string SaveDirLock::describeSelf() {
  char iso[32] = "?";
  std::tm tm{};
  if (::gmtime_r(&g_process_start, &tm)) std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return ::slim::detail::str("pid=", ::getpid(), " host=", hostName(), " started=",
                             static_cast<long long>(g_process_start), " (", iso, ")");
}

SaveDirLock::SaveDirLock(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) SLIM_THROW(CheckpointError, "cannot create checkpoint directory ", dir_.string(), ": ", ec.message());
  const fs::path path = file();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    SLIM_THROW(CheckpointError, "cannot open lock file ", path.string(), ": ", std::strerror(errno));

  int rc;
  int err = 0;
  do {
    const int fake = g_fake_flock_errno.load();
    rc = fake != 0 ? -1 : ::flock(fd, LOCK_EX | LOCK_NB);
    err = fake != 0 ? fake : errno;
  } while (rc != 0 && err == EINTR);

  if (rc != 0) {
    if (err == EWOULDBLOCK) {
      const std::string holder = readHolder(fd);
      ::close(fd);
      const std::string pid = field(holder, "pid");
      const std::string host = field(holder, "host");
      const std::string who =
          pid.empty() ? std::string("a process that has not yet recorded itself")
                      : ::slim::detail::str("pid ", pid, " on host ", host.empty() ? "?" : host);
      SLIM_THROW(ConfigError, "checkpoint directory ", dir_.string(), " is in use by another slimtrain job (",
                 who, "; ", path.string(), ": '", holder,
                 "'). Two jobs sharing a directory would overwrite each other's checkpoints. Wait for that "
                 "job to finish, or give this run its own Global.save_dir / Checkpoint.dir");
    }
    ::close(fd);
    if (flockUnsupported(err)) {
      log::warn("checkpoint: cannot lock ", dir_.string(), " (flock on ", path.string(), ": ", std::strerror(err),
                "; the file system does not support it); continuing WITHOUT protection against a second "
                "job using the same directory");
      return;
    }
    SLIM_THROW(CheckpointError, "cannot lock ", path.string(), ": ", std::strerror(err));
  }

  fd_ = fd;
  owner_pid_ = ::getpid();
  registerFd(fd_);
  const std::string line = describeSelf() + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
    log::warn("checkpoint: locked ", dir_.string(), " but cannot record the holder in ", path.string(), ": ",
              std::strerror(errno));
}

SaveDirLock::~SaveDirLock() { release(); }

void SaveDirLock::release() noexcept {
  if (fd_ < 0) return;
  // In a fork()ed child the descriptor was closed by the atfork handler and
  // its number may have been reused: never touch it there.
  if (owner_pid_ == ::getpid()) {
    unregisterFd(fd_);
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  fd_ = -1;
}

}  // namespace slim::checkpoint
