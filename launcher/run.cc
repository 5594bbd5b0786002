// Subcommand dispatch and error-to-exit-code mapping. A failing rank aborts
// the communicator so that its peers exit too instead of waiting.
#include "launcher/run.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "comm/registry.h"
#include "launcher/cli.h"
#include "launcher/test_seams.h"
#include "launcher/tools.h"
#include "slim_config.h"
#include "trainer/compress/register_ops.h"
#include "trainer/config/config.h"
#include "trainer/core/log.h"
#include "trainer/core/signals.h"
#include "trainer/core/threads.h"
#include "trainer/train/commands.h"

namespace slim::launcher {
namespace {

// Ranks sharing this node: Open MPI and SLURM say so; otherwise assume all.
int localRanks(int world) {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}) {
    const char* s = std::getenv(v);
    if (s != nullptr && std::atoi(s) > 0) return std::atoi(s);
  }
  return world;
}

// Commands that run on every rank with a communicator.
int runDistributed(const CommandLine& cl, std::unique_ptr<comm::Communicator>& comm) {
  if (cl.positional.size() != 1)
    SLIM_THROW(ConfigError, "`slimtrain ", cl.command, "` needs exactly one CONFIG.yaml; got ",
               cl.positional.size(), " arguments");
  // A stop signal during startup (config, MPI, data and model loading) is
  // kept and honoured at the first iteration (exit 75), not fatal.
  installStopSignalHandlers();
  comm::LaunchInfo launch = comm::detectLaunch();
  log::setRank(launch.rank, launch.size);
  // Every rank parses and validates the whole config before any collective.
  config::Config cfg = config::loadConfig(cl.positional[0], cl.sets, cl.command == "eval");
  comm = comm::createCommunicator(
      cfg.distributed.backend,
      std::chrono::milliseconds(static_cast<int64_t>(cfg.distributed.timeout_s * 1000)));
  log::setRank(comm->rank(), comm->size());
  installTestSeams(comm->rank());
  const int cores = defaultComputeThreads(localRanks(comm->size()));
  setCoresPerRank(cores);
  setComputeThreads(cfg.global.num_threads > 0 ? static_cast<int>(cfg.global.num_threads) : cores);
  installStopSignalHandlers();  // again: MPI initialisation may have replaced them
  const bool force = cl.flags.count("--force-resume") != 0;
  if (cl.command == "train") return train::runTrain(cfg, *comm, force);
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
    // Every op family, once, before anything builds a graph: the built-in
    // ONNX ops come with OpRegistry::get(); the compression passes' ops
    // (fake quant, PACT, distillation losses) and QuantizeLinear /
    // DequantizeLinear (INT8 QDQ models run in eval, infer and inspect too).
    compress::registerCompressOps(ops::OpRegistry::get());
    CommandLine cl = parseCommandLine(argc, argv);
    if (!cl.log_level.empty())
      log::setLevel(cl.log_level == "debug"  ? log::Level::kDebug
                    : cl.log_level == "warn" ? log::Level::kWarn
                    : cl.log_level == "error" ? log::Level::kError
                                              : log::Level::kInfo);
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
    // Peers must not hang; a divergence is agreed on by every rank, which all
    // leave with its exit code.
    if (comm && comm->size() > 1 && dynamic_cast<const DivergenceError*>(&e) == nullptr)
      comm->abort(e.what(), code);
    return code;
  }
}

}  // namespace slim::launcher
