// Subcommand dispatch and error-to-exit-code mapping. A failing rank aborts
// the communicator so that its peers exit too instead of waiting.
#include "launcher/run.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "comm/registry.h"
#include "launcher/cli.h"
#include "launcher/tools.h"
#include "slim_config.h"
#include "trainer/config/config.h"
#include "trainer/core/log.h"
#include "trainer/train/commands.h"

namespace slim::launcher {
namespace {

// Commands that run on every rank with a communicator.
int runDistributed(const CommandLine& cl, std::unique_ptr<comm::Communicator>& comm) {
  if (cl.positional.size() != 1)
    SLIM_THROW(ConfigError, "`slimtrain ", cl.command, "` needs exactly one CONFIG.yaml; got ",
               cl.positional.size(), " arguments");
  comm::LaunchInfo launch = comm::detectLaunch();
  log::setRank(launch.rank, launch.size);
  // Every rank parses and validates the whole config before any collective.
  config::Config cfg = config::loadConfig(cl.positional[0], cl.sets);
  comm = comm::createCommunicator(
      cfg.distributed.backend,
      std::chrono::milliseconds(static_cast<int64_t>(cfg.distributed.timeout_s * 1000)));
  log::setRank(comm->rank(), comm->size());
  if (cl.command == "train") return train::runTrain(cfg, *comm);
  if (cl.command == "eval") {
    auto it = cl.options.find("--model");
    return train::runEval(cfg, it == cl.options.end() ? "" : it->second, *comm);
  }
  return runCompress(cfg, cl, *comm);
}

}  // namespace

int run(int argc, char** argv) {
  std::unique_ptr<comm::Communicator> comm;
  try {
    CommandLine cl = parseCommandLine(argc, argv);
    if (cl.help) {
      std::cout << usage(cl.command);
      return kExitOk;
    }
    if (cl.command == "version") {
      std::cout << "slimtrain " << SLIM_VERSION << "\n";
      return kExitOk;
    }
    if (cl.command == "train" || cl.command == "eval" || cl.command == "compress")
      return runDistributed(cl, comm);
    return runTool(cl);
  } catch (const std::exception& e) {
    int code = exitCodeFor(e);
    log::error(e.what());
    if (comm && comm->size() > 1) comm->abort(e.what());  // peers must not hang
    return code;
  }
}

}  // namespace slim::launcher
