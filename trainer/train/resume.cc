#include "trainer/train/resume.h"

#include <vector>

#include "trainer/core/error.h"
#include "trainer/core/log.h"

namespace slim::train {

void checkResumeCompatible(const config::Config& cfg, int world,
                           const checkpoint::TrainingState& st, const std::string& file,
                           bool force) {
  const int64_t global_batch = cfg.global.batch_size * world;
  config::Config saved = config::parseConfigString(st.config_yaml, file + ":/config_yaml");
  const int64_t saved_global = saved.global.batch_size * st.world_size;
  if (st.world_size != world && saved_global == global_batch) {
    log::info0("checkpoint was written by ", st.world_size, " rank(s) x batch ",
               saved.global.batch_size, "; continuing on ", world, " rank(s) x batch ",
               cfg.global.batch_size, " (global batch ", global_batch, ")");
    saved.global.batch_size = cfg.global.batch_size;
  }
  std::vector<std::string> diff = config::trajectoryDiff(saved, cfg);
  if (saved_global != global_batch)
    diff.push_back("global batch (Global.batch_size x ranks): " + std::to_string(saved_global) +
                   " (" + std::to_string(st.world_size) + " rank(s)) -> " +
                   std::to_string(global_batch) + " (" + std::to_string(world) + " rank(s))");
  if (!diff.empty() && !force) {
    std::string msg;
    for (const auto& d : diff) msg += "\n  " + d;
    SLIM_THROW(ConfigError, "checkpoint ", file,
               " was written with a config that leads to a different training run:", msg,
               "\nresume with --force-resume to accept, or set Checkpoint.resume: never");
  }
}

}  // namespace slim::train
