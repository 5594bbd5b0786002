// The launcher: parses the command line, detects how the job was started
// (mpirun / srun / plain), creates the communicator and dispatches to a
// subcommand. Maps exceptions to exit codes (DESIGN.md §6).
#pragma once

namespace slim::launcher {

/// Runs the slimtrain command line; returns the process exit code.
int run(int argc, char** argv);

}  // namespace slim::launcher
