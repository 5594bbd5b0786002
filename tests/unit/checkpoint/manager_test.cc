// CheckpointManager: naming, retention, stale temporaries, fallback to an
// older checkpoint, disk-full during a write (hook and real tmpfs), timing.
#include "checkpoint/checkpoint_manager.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "checkpoint/atomic_file.h"
#include "state_fixture.h"

namespace slim {
namespace {

using checkpoint::CheckpointManager;
using checkpoint::TrainingState;
namespace fs = std::filesystem;

std::vector<std::string> names(const std::vector<fs::path>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.filename().string());
  return out;
}

std::string readLatest(const fs::path& dir) {
  std::ifstream in(dir / "latest");
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(CheckpointManager, KeepsNewestAndUpdatesLatest) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path / "ckpts", 2);
  EXPECT_FALSE(m.loadLatest().has_value());  // directory does not exist yet
  for (int64_t step : {5, 100, 20, 300}) m.save(test::makeState(step));
  EXPECT_EQ(names(m.list()), (std::vector<std::string>{"ckpt-00000100.h5", "ckpt-00000300.h5"}));
  EXPECT_EQ(readLatest(m.dir()), "ckpt-00000300.h5");
  fs::path from;
  auto s = m.loadLatest(&from);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->step, 300);
  EXPECT_EQ(from.filename(), "ckpt-00000300.h5");
  EXPECT_TRUE(checkpoint::diffStates(*s, test::makeState(300)).empty());
  CheckpointManager all(dir.path / "all", 0);
  for (int64_t step : {1, 2, 3}) all.save(test::makeState(step));
  EXPECT_EQ(all.list().size(), 3u);
  EXPECT_THROW(CheckpointManager(dir.path, -1), ConfigError);
}

/// Sets a file's modification time `hours` into the past.
void backdate(const fs::path& p, int hours = 2) {
  fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(hours));
}

TEST(CheckpointManager, StaleTemporaryIsIgnoredAndCleaned) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 3);
  m.save(test::makeState(10));
  // Old-style names (no writer suffix) from a run before this one.
  std::ofstream(dir.path / "ckpt-00000020.h5.tmp") << "half a file";
  std::ofstream(dir.path / "latest.tmp") << "ckpt-00000020.h5";
  backdate(dir.path / "ckpt-00000020.h5.tmp");
  backdate(dir.path / "latest.tmp");
  std::ofstream(dir.path / "notes.txt") << "unrelated";
  EXPECT_EQ(names(m.list()), (std::vector<std::string>{"ckpt-00000010.h5"}));
  auto s = m.loadLatest();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->step, 10);
  m.save(test::makeState(30));
  EXPECT_FALSE(fs::exists(dir.path / "ckpt-00000020.h5.tmp"));
  EXPECT_FALSE(fs::exists(dir.path / "latest.tmp"));
  EXPECT_TRUE(fs::exists(dir.path / "notes.txt"));
}

TEST(CheckpointManager, FallsBackToPreviousWhenNewestIsDamaged) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 3);
  m.save(test::makeState(10));
  m.save(test::makeState(20));
  const fs::path newest = m.pathFor(30);
  m.save(test::makeState(30));
  fs::resize_file(newest, fs::file_size(newest) / 2);
  testing::internal::CaptureStderr();
  fs::path from;
  auto s = m.loadLatest(&from);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->step, 20);
  EXPECT_EQ(from, m.pathFor(20));
  EXPECT_NE(log.find("skipping damaged checkpoint"), std::string::npos) << log;
  EXPECT_NE(log.find(newest.string()), std::string::npos) << log;
  // A pointer naming a deleted file also falls back, with a warning.
  fs::remove(newest);
  std::ofstream(dir.path / "latest") << "ckpt-00000030.h5\n";
  testing::internal::CaptureStderr();
  EXPECT_EQ(m.loadLatest()->step, 20);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("not a checkpoint here"), std::string::npos);
  // Everything damaged: an error listing them, never a silent fresh start.
  for (const auto& p : m.list()) fs::resize_file(p, 64);
  testing::internal::CaptureStderr();
  EXPECT_THROW(m.loadLatest(), CheckpointError);
  testing::internal::GetCapturedStderr();
}

TEST(CheckpointManager, NewestValidWinsOverAnOlderLatestPointer) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 0);
  m.save(test::makeState(10));
  m.save(test::makeState(20));
  // A pointer naming the newest file: loaded, no complaint.
  testing::internal::CaptureStderr();
  EXPECT_EQ(m.loadLatest()->step, 20);
  EXPECT_EQ(testing::internal::GetCapturedStderr().find("names"), std::string::npos);
  // A pointer naming an older checkpoint while a newer valid one exists (e.g.
  // left by another job): the newest valid one wins, with a warning.
  std::ofstream(dir.path / "latest") << "ckpt-00000010.h5\n";
  testing::internal::CaptureStderr();
  fs::path from;
  auto s = m.loadLatest(&from);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->step, 20);
  EXPECT_EQ(from, m.pathFor(20));
  EXPECT_TRUE(checkpoint::diffStates(*s, test::makeState(20)).empty());
  EXPECT_NE(log.find("names ckpt-00000010.h5 but the newer ckpt-00000020.h5 is valid"), std::string::npos)
      << log;
  // The newer one damaged: back to the older one the pointer names.
  fs::resize_file(m.pathFor(20), 100);
  testing::internal::CaptureStderr();
  EXPECT_EQ(m.loadLatest(&from)->step, 10);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("skipping damaged checkpoint"), std::string::npos);
  EXPECT_EQ(from, m.pathFor(10));
  // No pointer at all: still the newest valid one.
  m.save(test::makeState(30));
  fs::remove(dir.path / "latest");
  EXPECT_EQ(m.loadLatest()->step, 30);
}

/// After a failed save, the earlier checkpoint and `latest` must be intact.
void expectPreviousSurvives(const CheckpointManager& m, int64_t prev_step) {
  EXPECT_EQ(names(m.list()), (std::vector<std::string>{m.pathFor(prev_step).filename().string()}));
  EXPECT_EQ(readLatest(m.dir()), m.pathFor(prev_step).filename().string());
  for (const auto& e : fs::directory_iterator(m.dir()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  auto s = m.loadLatest();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(checkpoint::diffStates(*s, test::makeState(prev_step)).empty());
}

TEST(CheckpointManager, DiskFullDuringWriteKeepsPreviousCheckpoint) {
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 2);
  m.save(test::makeState(10));
  checkpoint::detail::setWriteFailureAfter(5000);
  try {
    m.save(test::makeState(20));
    ADD_FAILURE() << "save did not fail";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ckpt-00000020.h5.tmp"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(write at byte 5000 of "), std::string::npos) << msg;
  }
  checkpoint::detail::setWriteFailureAfter(-1);
  expectPreviousSurvives(m, 10);
}

TEST(CheckpointManager, RealFullTmpfsKeepsPreviousCheckpoint) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  test::ScratchDir dir;
  if (::mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a 64 KiB tmpfs here: " << std::strerror(errno);
  struct Unmount {
    const char* p;
    ~Unmount() { ::umount2(p, MNT_DETACH); }
  } unmount{dir.path.c_str()};
  CheckpointManager m(dir.path, 2);
  m.save(test::makeState(10));
  TrainingState big = test::makeState(20);
  Rng rng(3);
  big.params.tensors["big"] = test::randomTensor({40000}, rng);  // 160 KB > 64 KiB
  try {
    m.save(big);
    ADD_FAILURE() << "save into a full tmpfs did not fail";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  expectPreviousSurvives(m, 10);
}

/// A field of /proc/self/status in KiB, -1 when absent.
int64_t statusKiB(const char* key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key)));
  return -1;
}

TEST(CheckpointManager, SavingAddsFarLessThanTheStateToPeakMemory) {
  // 32 MiB of tensors. Saving used to hold the state twice more (the HDF5
  // in-memory file, then its image copy); streamed into the temporary file
  // the peak grows by HDF5's chunk buffers only.
  if (!h5::StreamFile::streamsDirectly())
    GTEST_SKIP() << "this HDF5 version builds the file in memory";
  TrainingState s = test::makeState(40);
  for (int i = 0; i < 8; ++i) {
    Tensor t({1024, 1024});
    float* p = t.f32();
    for (int64_t j = 0; j < t.numel(); ++j) p[j] = static_cast<float>(j % 1000 + i) * 0.25f;
    s.params.tensors["big" + std::to_string(i)] = t;
  }
  test::ScratchDir dir;
  CheckpointManager m(dir.path, 1);
  m.save(test::makeState(39));  // HDF5 set up, small buffers allocated
  // Reset the peak (VmHWM) to the current resident size (Linux >= 4.0).
  bool reset = false;
  {
    std::ofstream clear("/proc/self/clear_refs");
    reset = static_cast<bool>(clear << "5" << std::flush);
  }
  if (!reset || statusKiB("VmHWM:") > statusKiB("VmRSS:") + 1024)
    GTEST_SKIP() << "cannot reset the peak resident size here";
  const int64_t before = statusKiB("VmRSS:");
  m.save(s);
  const int64_t added = statusKiB("VmHWM:") - before;
  EXPECT_LT(added, 8 * 1024) << "saving a 32 MiB state raised the peak by " << added / 1024
                             << " MiB";
  EXPECT_TRUE(checkpoint::diffStates(s, *m.loadLatest()).empty());
}

TEST(CheckpointManager, OneMegabyteStateTiming) {
  // mobilenet_tiny scale: ~100k parameters with momentum and masks (~0.9 MB).
  test::ScratchDir dir;
  Rng rng(11);
  TrainingState s;
  s.step = 1000;
  int64_t total = 0;
  for (int layer = 0; total < 100000; ++layer) {
    const int64_t c = 8 + 8 * (layer % 6);
    const Shape shape = {c, c, 3, 3};
    const std::string name = "/features." + std::to_string(layer) + "/conv/weight";
    s.params.tensors[name] = test::randomTensor(shape, rng);
    s.optimizer.tensors[name + "/velocity"] = test::randomTensor(shape, rng);
    Tensor mask(shape, DType::kU8);
    for (int64_t i = 0; i < mask.numel(); ++i) mask.data<uint8_t>()[i] = rng.below(2);
    s.masks.tensors[name] = mask;
    total += numelOf(shape);
  }
  CheckpointManager m(dir.path, 1);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const fs::path p = m.save(s);
  const auto t1 = Clock::now();
  TrainingState r = CheckpointManager::load(p);
  const auto t2 = Clock::now();
  EXPECT_TRUE(checkpoint::diffStates(s, r).empty());
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::cout << "[timing] " << s.params.tensors.size() << " layers, " << total << " params, file "
            << fs::file_size(p) << " bytes: save " << ms(t1 - t0) << " ms (incl. fsync), load " << ms(t2 - t1)
            << " ms\n";
  RecordProperty("save_ms", static_cast<int>(ms(t1 - t0)));
  RecordProperty("load_ms", static_cast<int>(ms(t2 - t1)));
}

}  // namespace
}  // namespace slim
