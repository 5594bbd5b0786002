// Entry points of the subcommands that train or evaluate; the launcher parses
// the command line and calls these. Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include "comm/communicator.h"
#include "trainer/config/config.h"

namespace slim::train {

/// `slimtrain train CONFIG`: FP32 training with cross-entropy; writes
/// <save_dir>/model.onnx and metrics.jsonl; prints a JSON summary on rank 0.
/// Checkpoints to Checkpoint.dir and resumes from it (Checkpoint.resume);
/// returns kExitCheckpointed when stopped by SIGUSR1/SIGTERM.
int runTrain(const config::Config& cfg, comm::Communicator& comm, bool force_resume = false);

/// `slimtrain eval CONFIG [--model PATH]`: prints {"top1": ...} on rank 0.
/// Without a path: <save_dir>/model.onnx when it exists, else Global's model.
int runEval(const config::Config& cfg, const std::string& model_path,
            comm::Communicator& comm);

}  // namespace slim::train
