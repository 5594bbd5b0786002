// `slimtrain compress CONFIG`: ACT's pipeline on a Graph — load the model,
// merge the frozen teacher, insert pruning masks and fake quantization, build
// the distillation objective, train with the shared loop, then write the
// compressed model, report.json and metrics.jsonl to Global.save_dir.
#pragma once

#include "comm/communicator.h"
#include "trainer/config/config.h"

namespace slim::train {

/// Runs the compression job on this rank; returns the process exit code
/// (kExitCheckpointed when stopped by a signal after checkpointing).
int runCompress(const config::Config& cfg, comm::Communicator& comm, bool force_resume);

}  // namespace slim::train
