// The checkpoint a run resumes from. Checkpoint.resume names it: "auto" (the
// newest valid checkpoint of the directory, CheckpointManager::loadLatest's
// rule) or a checkpoint file ("never" does not resume; the caller decides
// that). A checkpoint holding non-finite values, written by a diverged run,
// is refused. Whether the checkpoint's config continues the same training
// run needs the config layer: train::checkResumeCompatible
// (trainer/train/resume.h) decides that.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/training_state.h"

namespace slim::checkpoint {

/// Loads the checkpoint `resume` ("auto" or a file) names.
/// @param ckpt        the run's checkpoint directory
/// @param loaded_from receives the path of the loaded file
/// @return nullopt for "auto" when the directory holds no checkpoint
/// @throws ConfigError when the file does not exist or is not a file, or the
///         state holds NaN/Inf; CheckpointError when it does not load
std::optional<TrainingState> loadResumePoint(const CheckpointManager& ckpt,
                                             const std::string& resume,
                                             std::filesystem::path* loaded_from);

}  // namespace slim::checkpoint
