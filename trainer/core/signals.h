// Stop requests from the outside world: SIGUSR1 (SLURM's warning before
// preemption or the time limit) and SIGTERM set a flag; the training loop
// polls it at iteration boundaries, agrees with the other ranks, checkpoints
// and exits with kExitCheckpointed.
#pragma once

namespace slim {

/// Installs handlers for SIGUSR1 and SIGTERM that only set the flag.
void installStopSignalHandlers();
/// True once a stop signal arrived (or requestStop was called).
bool stopRequested();
/// Sets the flag (tests).
void requestStop();
/// Number of the last stop signal received (0 if none).
int stopSignal();

}  // namespace slim
