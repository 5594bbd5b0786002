// Test seams of the training loop, read from the environment once at startup
// and run through the loop's hooks interface (train::TrainHooks), so that the
// loop itself holds no test code. The end-to-end tests use them:
//   SLIM_TEST_KILL_AT="ITER:PHASE"  the process kills itself with SIGKILL at
//       iteration ITER (0-based) in PHASE: "forward" (after the forward pass),
//       "step" (after the optimizer and mask updates; the default) or
//       "checkpoint" (with a half-written temporary checkpoint file on disk),
//       to interrupt a run at precise points (exact-resume tests);
//   SLIM_TEST_KILL_RANK=N           only rank N does (default: every rank);
//   SLIM_DUMP_RANK_STATE=DIR        after the last iteration every rank writes
//       its own final state to DIR/rank<N>/, so tests can check that
//       replicated state is bit-identical across ranks.
#pragma once

namespace slim::launcher {

/// Registers the seams the environment asks for with every Trainer of this
/// process (train::addProcessHooks); nothing when none is set.
/// @param rank this process's rank
void installTestSeams(int rank);

}  // namespace slim::launcher
