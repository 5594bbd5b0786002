#include "checkpoint/resume.h"

#include <cmath>

#include "trainer/core/error.h"

namespace slim::checkpoint {
namespace {

bool allFinite(const Tensor& t) {
  const float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

}  // namespace

std::optional<TrainingState> loadResumePoint(const CheckpointManager& ckpt,
                                             const std::string& resume,
                                             std::filesystem::path* loaded_from) {
  std::filesystem::path& from = *loaded_from;
  std::optional<TrainingState> st;
  if (resume == "auto") {
    st = ckpt.loadLatest(&from);
  } else {
    from = resume;
    if (!std::filesystem::is_regular_file(from))
      SLIM_THROW(ConfigError, "Checkpoint.resume: ", from.string(),
                 std::filesystem::exists(from) ? " is not a file" : " does not exist",
                 " (give a checkpoint file, e.g. a ckpt-*.h5 in ", ckpt.dir().string(),
                 ", or auto / never)");
    st = CheckpointManager::load(from);
  }
  if (st)
    for (const auto* grp : {&st->params, &st->buffers})
      for (const auto& [name, t] : grp->tensors)
        if (t.dtype() == DType::kF32 && !allFinite(t))
          SLIM_THROW(ConfigError, "checkpoint ", from.string(), " holds non-finite values in '",
                     name,
                     "' (a diverged run); resume from an earlier checkpoint with "
                     "Checkpoint.resume: PATH, or start over with Checkpoint.resume: never");
  return st;
}

}  // namespace slim::checkpoint
