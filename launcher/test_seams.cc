#include "launcher/test_seams.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint/checkpoint_manager.h"
#include "trainer/core/log.h"
#include "trainer/train/trainer.h"

namespace slim::launcher {
namespace {

class TestSeams : public train::TrainHooks {
 public:
  TestSeams(int rank, int64_t kill_iter, std::string kill_phase, std::string dump_dir)
      : rank_(rank), kill_iter_(kill_iter), kill_phase_(std::move(kill_phase)),
        dump_dir_(std::move(dump_dir)) {}

  void afterForward(int64_t iter, graph::Executor&) override { maybeKill(iter, "forward"); }
  // The last hook of the loop, so this runs after every optimizer and mask update.
  void afterStep(int64_t iter, graph::Executor&) override { maybeKill(iter, "step"); }

  void beforeCheckpoint(int64_t iter, const std::filesystem::path& temp_file) override {
    if (kill_iter_ != iter - 1 || kill_phase_ != "checkpoint") return;
    // What a kill in the middle of CheckpointManager::save leaves behind.
    std::filesystem::create_directories(temp_file.parent_path());
    std::ofstream(temp_file) << "\x89HDF\r\n partial";
    maybeKill(iter - 1, "checkpoint");
  }

  void afterTraining(int64_t, const std::function<checkpoint::TrainingState()>& capture) override {
    if (dump_dir_.empty()) return;
    checkpoint::CheckpointManager mine(
        std::filesystem::path(dump_dir_) / ("rank" + std::to_string(rank_)), 1);
    checkpoint::TrainingState st = capture();
    st.created_unix = 1;
    mine.save(st);
  }

 private:
  void maybeKill(int64_t iter, const char* phase) const {
    if (kill_iter_ == iter && kill_phase_ == phase) {
      log::warn("SLIM_TEST_KILL_AT: killing myself at iteration ", iter, " (", phase, ")");
      std::raise(SIGKILL);
    }
  }

  int rank_;
  int64_t kill_iter_;
  std::string kill_phase_;  // empty: no kill
  std::string dump_dir_;    // empty: no dump
};

}  // namespace

void installTestSeams(int rank) {
  int64_t kill_iter = -1;
  std::string kill_phase;  // empty: no kill
  const char* v = std::getenv("SLIM_TEST_KILL_AT");
  const char* r = std::getenv("SLIM_TEST_KILL_RANK");
  if (v != nullptr && (r == nullptr || std::atoi(r) == rank)) {
    std::string s = v;
    auto colon = s.find(':');
    kill_iter = std::stoll(s.substr(0, colon));
    kill_phase = colon == std::string::npos ? "step" : s.substr(colon + 1);
  }
  const char* dump = std::getenv("SLIM_DUMP_RANK_STATE");
  std::string dump_dir = dump != nullptr ? dump : "";
  if (kill_phase.empty() && dump_dir.empty()) return;
  static TestSeams seams(rank, kill_iter, kill_phase, dump_dir);
  train::addProcessHooks(&seams);
}

}  // namespace slim::launcher
