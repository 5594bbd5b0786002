// Single-process subcommands (inspect, infer, export, checkpoint show) and
// the compress entry point.
#pragma once

#include "comm/communicator.h"
#include "launcher/cli.h"
#include "trainer/config/config.h"

namespace slim::launcher {

/// inspect / infer / export / checkpoint show.
int runTool(const CommandLine& cl);

/// compress (every rank).
int runCompress(const config::Config& cfg, const CommandLine& cl, comm::Communicator& comm);

}  // namespace slim::launcher
