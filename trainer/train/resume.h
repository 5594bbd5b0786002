// Whether a checkpoint continues the training run this config describes (the
// resume-compatibility decision; checkpoint::loadResumePoint picks and loads
// the checkpoint). The trajectory depends on the global batch, not on how it
// is split: a resume on another world size that keeps batch_size x ranks equal
// continues the same run (the sampler position is world-size free). Any other
// difference config::trajectoryDiff reports refuses the resume unless forced.
#pragma once

#include <string>

#include "checkpoint/training_state.h"
#include "trainer/config/config.h"

namespace slim::train {

/// @param cfg   this run's config
/// @param world this run's number of ranks
/// @param st    the checkpoint, read from `file`
/// @param force --force-resume: accept a different trajectory
/// @throws ConfigError listing the differences
void checkResumeCompatible(const config::Config& cfg, int world,
                           const checkpoint::TrainingState& st, const std::string& file,
                           bool force);

}  // namespace slim::train
