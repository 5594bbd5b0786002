// Two writers, one directory: SaveDirLock (fork-based: held / released /
// dead holder / not kept by children / unsupported file system) and the
// per-writer temporary names and stale-temporary cleanup of CheckpointManager.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/save_dir_lock.h"
#include "state_fixture.h"

namespace slim {
namespace {

using checkpoint::CheckpointManager;
using checkpoint::SaveDirLock;
namespace fs = std::filesystem;

/// Runs `body` in a fork()ed child; returns its exit code (or 128 + signal).
/// The child never returns into gtest: it leaves with _exit(body()).
template <class F>
int inChild(F body) {
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) ADD_FAILURE() << "fork: " << std::strerror(errno);
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: unexpected exception: %s\n", e.what());
      rc = 98;
    }
    ::_exit(rc);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string readAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string hostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

/// Exit code of a child that tries to lock `dir`: 0 = locked, 1 = refused
/// with a ConfigError naming dir, the holder pid `holder` and the host.
int tryLockInChild(const fs::path& dir, pid_t holder) {
  return inChild([&] {
    try {
      SaveDirLock lock(dir);
      return lock.held() ? 0 : 3;
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      const bool ok = msg.find(dir.string()) != std::string::npos &&
                      msg.find("pid " + std::to_string(holder)) != std::string::npos &&
                      msg.find(hostName()) != std::string::npos &&
                      msg.find("Checkpoint.dir") != std::string::npos && msg.find("Wait") != std::string::npos;
      if (!ok) std::fprintf(stderr, "child: unexpected message: %s\n", msg.c_str());
      return ok ? 1 : 2;
    }
  });
}

TEST(SaveDirLock, SecondLockFailsWhileHeldAndSucceedsAfterRelease) {
  test::ScratchDir scratch;
  const fs::path dir = scratch.path / "not" / "yet" / "there";
  {
    SaveDirLock lock(dir);  // creates the directory
    ASSERT_TRUE(lock.held());
    EXPECT_EQ(lock.file(), dir / ".slimtrain.lock");
    const std::string line = readAll(lock.file());
    EXPECT_EQ(line.rfind("pid=" + std::to_string(::getpid()) + " host=" + hostName() + " started=", 0), 0u)
        << line;
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);

    EXPECT_EQ(tryLockInChild(dir, ::getpid()), 1);  // another process: refused
    // Another lock in this same process is refused too (flock is per open file).
    try {
      SaveDirLock again(dir);
      ADD_FAILURE() << "second lock in the same process succeeded";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("is in use by another slimtrain job"), std::string::npos) << e.what();
    }
    EXPECT_EQ(exitCodeFor(ConfigError("x")), kExitUsage);
  }
  EXPECT_TRUE(fs::exists(dir / ".slimtrain.lock"));  // the file stays, unlocked
  EXPECT_EQ(tryLockInChild(dir, ::getpid()), 0);

  SaveDirLock relock(dir);  // explicit release() works too, and is idempotent
  EXPECT_TRUE(relock.held());
  relock.release();
  relock.release();
  EXPECT_FALSE(relock.held());
  EXPECT_EQ(tryLockInChild(dir, ::getpid()), 0);
}

TEST(SaveDirLock, KilledHolderReleasesTheLock) {
  test::ScratchDir scratch;
  char c;
  int status;
  // A holder that dies by SIGKILL while holding the lock.
  int ready2[2];
  ASSERT_EQ(::pipe(ready2), 0);
  const pid_t victim = ::fork();
  ASSERT_GE(victim, 0);
  if (victim == 0) {
    ::close(ready2[0]);
    SaveDirLock lock(scratch.path);
    (void)!::write(ready2[1], "L", 1);
    for (;;) ::pause();
  }
  ::close(ready2[1]);
  ASSERT_EQ(::read(ready2[0], &c, 1), 1);
  ::close(ready2[0]);
  EXPECT_EQ(tryLockInChild(scratch.path, victim), 1);
  EXPECT_THROW(SaveDirLock{scratch.path}, ConfigError);
  ::kill(victim, SIGKILL);
  ::waitpid(victim, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  SaveDirLock mine(scratch.path);  // the kernel released the dead holder's lock
  EXPECT_TRUE(mine.held());
  EXPECT_NE(readAll(mine.file()).find("pid=" + std::to_string(::getpid()) + " "), std::string::npos);
}

TEST(SaveDirLock, ChildrenOfTheHolderDoNotKeepTheLock) {
  test::ScratchDir scratch;
  // The holder forks a long-lived child (as a data worker might), reports the
  // child's pid, then dies by SIGKILL without releasing anything.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::close(pipefd[0]);
    SaveDirLock lock(scratch.path);
    const pid_t worker = ::fork();
    if (worker == 0) {
      // Reported from the child itself: its fork handler (which closes the
      // lock's descriptor) has run by the time it executes this.
      const pid_t me = ::getpid();
      (void)!::write(pipefd[1], &me, sizeof me);
      ::close(pipefd[1]);
      for (int i = 0; i < 300; ++i) ::usleep(100000);  // 30 s at most
      ::_exit(0);
    }
    ::raise(SIGKILL);
  }
  ::close(pipefd[1]);
  pid_t worker = -1;
  ASSERT_EQ(::read(pipefd[0], &worker, sizeof worker), static_cast<ssize_t>(sizeof worker));
  ::close(pipefd[0]);
  int status;
  ::waitpid(holder, &status, 0);
  ASSERT_EQ(::kill(worker, 0), 0) << "the holder's child should still be alive";
  try {
    SaveDirLock mine(scratch.path);
    EXPECT_TRUE(mine.held());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the dead holder's child kept the lock: " << e.what();
  }
  ::kill(worker, SIGKILL);
}

TEST(SaveDirLock, DescriptorIsCloseOnExec) {
  test::ScratchDir scratch;
  SaveDirLock lock(scratch.path);
  int found = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(e.path(), ec);
    if (ec || target != fs::canonical(lock.file())) continue;
    const int fd = std::stoi(e.path().filename().string());
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    ++found;
  }
  EXPECT_EQ(found, 1);
}

TEST(SaveDirLock, UnsupportedFileSystemWarnsAndContinues) {
  test::ScratchDir scratch;
  for (int err : {ENOLCK, EOPNOTSUPP}) {
    checkpoint::detail::setFlockFailure(err);
    testing::internal::CaptureStderr();
    SaveDirLock lock(scratch.path);
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(lock.held());
    EXPECT_NE(log.find("WITHOUT protection"), std::string::npos) << log;
    EXPECT_NE(log.find(scratch.path.string()), std::string::npos) << log;
  }
  checkpoint::detail::setFlockFailure(EIO);  // any other failure is an error
  EXPECT_THROW(SaveDirLock{scratch.path}, CheckpointError);
  checkpoint::detail::setFlockFailure(0);
  SaveDirLock real(scratch.path);
  EXPECT_TRUE(real.held());
}

// ---- per-writer temporaries -------------------------------------------------

TEST(CheckpointTemporaries, NamesAreUniquePerWriterAndStable) {
  test::ScratchDir dir;
  CheckpointManager a(dir.path, 2), b(dir.path, 2);
  const std::string base = a.pathFor(20).string() + ".tmp." + std::to_string(::getpid()) + ".";
  EXPECT_EQ(a.tempPathFor(20).string().rfind(base, 0), 0u) << a.tempPathFor(20);
  EXPECT_EQ(b.tempPathFor(20).string().rfind(base, 0), 0u) << b.tempPathFor(20);
  EXPECT_NE(a.tempPathFor(20), b.tempPathFor(20));
  EXPECT_EQ(a.tempPathFor(20), a.tempPathFor(20));
  EXPECT_EQ(a.tempPathFor(20).parent_path(), dir.path);
  // Another process's manager differs even when created in the same order.
  const std::string mine = a.tempPathFor(20).string();
  EXPECT_EQ(inChild([&] {
              const std::string theirs = CheckpointManager(dir.path, 2).tempPathFor(20).string();
              return theirs != mine && theirs != b.tempPathFor(20).string() ? 0 : 1;
            }),
            0);
  EXPECT_TRUE(a.list().empty());  // temporaries never count as checkpoints
}

/// Checks the end state after concurrent writers of steps 1..n.
void expectCleanEnd(const fs::path& dir, int64_t n) {
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  CheckpointManager m(dir, 0);
  fs::path from;
  auto s = m.loadLatest(&from);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->step, n);
  EXPECT_TRUE(checkpoint::diffStates(*s, test::makeState(n)).empty());
  for (const auto& p : m.list()) EXPECT_NO_THROW(CheckpointManager::load(p)) << p;
}

TEST(CheckpointTemporaries, TwoManagersWriteTheSameStepsFromTwoThreads) {
  test::ScratchDir dir;
  constexpr int64_t kSteps = 12;
  std::string errors[2];
  auto writer = [&](int id) {
    CheckpointManager m(dir.path, 3);
    try {
      for (int64_t step = 1; step <= kSteps; ++step) m.save(test::makeState(step));
    } catch (const std::exception& e) {
      errors[id] = e.what();
    }
  };
  std::thread t0(writer, 0), t1(writer, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  expectCleanEnd(dir.path, kSteps);
}

TEST(CheckpointTemporaries, TwoProcessesWriteTheSameSteps) {
  test::ScratchDir dir;
  constexpr int64_t kSteps = 12;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int rc = 0;
    try {
      CheckpointManager m(dir.path, 3);
      for (int64_t step = 1; step <= kSteps; ++step) m.save(test::makeState(step));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child writer: %s\n", e.what());
      rc = 1;
    }
    ::_exit(rc);
  }
  std::string error;
  try {
    CheckpointManager m(dir.path, 3);
    for (int64_t step = 1; step <= kSteps; ++step) m.save(test::makeState(step));
  } catch (const std::exception& e) {
    error = e.what();
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(error, "");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child writer failed, status " << status;
  expectCleanEnd(dir.path, kSteps);
}

/// Sets a file's modification time `hours` into the past.
void backdate(const fs::path& p, int hours = 2) {
  fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(hours));
}

TEST(CheckpointTemporaries, CleanupRemovesOnlyDeadWritersFiles) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 0);
  CheckpointManager other(dir.path, 0);  // a live writer in this process
  // This host's tag as the manager writes it: "<base>.tmp.<pid>.<n>.<host>".
  const std::string own = m.tempPathFor(40).filename().string();
  const std::string tag = own.substr(own.find('.', own.find(".tmp.") + 5));  // ".<n>.<host>"
  const std::string host = tag.substr(tag.find('.', 1) + 1);
  // A pid that is certainly dead: a reaped child's.
  pid_t reaped = ::fork();
  if (reaped == 0) ::_exit(0);
  ::waitpid(reaped, nullptr, 0);
  const pid_t alive = ::getppid();  // ctest or the shell: alive, not us

  auto touch = [&](const std::string& name) {
    std::ofstream(dir.path / name) << "partial";
    return dir.path / name;
  };
  auto tmpName = [&](int64_t step, long long pid, int n, const std::string& h) {
    char name[64];
    std::snprintf(name, sizeof name, "ckpt-%08lld.h5.tmp.", static_cast<long long>(step));
    return std::string(name) + std::to_string(pid) + "." + std::to_string(n) + "." + h;
  };
  const fs::path keep_other_mgr = other.tempPathFor(20);
  std::ofstream(keep_other_mgr) << "partial";
  const fs::path keep_live_pid = touch(tmpName(21, alive, 0, host));
  const fs::path keep_live_latest = touch("latest.tmp." + std::to_string(alive) + ".0." + host);
  const fs::path keep_foreign_new = touch(tmpName(22, 4242, 0, "some-other-host"));
  const fs::path keep_legacy_new = touch("ckpt-00000023.h5.tmp");
  const fs::path gone_own = m.tempPathFor(40);
  std::ofstream(gone_own) << "partial";
  const fs::path gone_dead_pid = touch(tmpName(41, reaped, 0, host));
  const fs::path gone_dead_latest = touch("latest.tmp." + std::to_string(reaped) + ".3." + host);
  const fs::path gone_foreign_old = touch(tmpName(42, 4242, 0, "some-other-host"));
  const fs::path gone_legacy_old = touch("ckpt-00000043.h5.tmp");
  const fs::path gone_legacy_latest = touch("latest.tmp");
  const fs::path gone_reused_pid = touch(tmpName(44, ::getpid(), 999, host));  // our pid, earlier process
  for (const auto& p : {gone_foreign_old, gone_legacy_old, gone_legacy_latest, gone_reused_pid}) backdate(p);
  const fs::path unrelated = touch("ckpt-00000050.h5.bak");

  m.save(test::makeState(30));
  for (const auto& p : {keep_other_mgr, keep_live_pid, keep_live_latest, keep_foreign_new, keep_legacy_new,
                        unrelated})
    EXPECT_TRUE(fs::exists(p)) << "removed although its writer may be alive: " << p;
  for (const auto& p : {gone_own, gone_dead_pid, gone_dead_latest, gone_foreign_old, gone_legacy_old,
                        gone_legacy_latest, gone_reused_pid})
    EXPECT_FALSE(fs::exists(p)) << "stale temporary left: " << p;
  EXPECT_EQ(m.list().size(), 1u);
  EXPECT_EQ(m.loadLatest()->step, 30);
}

}  // namespace
}  // namespace slim
