// Tool subcommands.
#include "launcher/tools.h"

#include <iostream>

#include "trainer/core/error.h"
#include "trainer/models/onnx/onnx_infer.h"
#include "checkpoint/training_state.h"
#include "trainer/train/compress_command.h"
#include "trainer/train/inspect.h"

namespace slim::launcher {

int runTool(const CommandLine& cl) {
  if (cl.command == "infer") {
    if (cl.positional.size() != 1 || cl.inputs.empty() || !cl.options.count("--output-dir"))
      SLIM_THROW(ConfigError, "usage: slimtrain infer MODEL --input a.pb [--input b.pb ...] "
                 "--output-dir DIR");
    models::runOnnxInfer(cl.positional[0], cl.inputs, cl.options.at("--output-dir"));
    return kExitOk;
  }
  if (cl.command == "inspect") {
    if (cl.positional.size() != 1) SLIM_THROW(ConfigError, "usage: slimtrain inspect MODEL [--json]");
    auto cfg = cl.options.find("--config");
    std::cout << train::inspectModel(cl.positional[0], cl.flags.count("--json") != 0,
                                     cfg == cl.options.end() ? "" : cfg->second);
    return kExitOk;
  }
  if (cl.command == "checkpoint") {
    if (cl.positional.size() != 2 || cl.positional[0] != "show")
      SLIM_THROW(ConfigError, "usage: slimtrain checkpoint show FILE");
    std::cout << checkpoint::describeCheckpointFile(cl.positional[1]);
    return kExitOk;
  }
  if (cl.command == "export") {
    auto out = cl.options.find("--out");
    if (cl.positional.size() != 1 || out == cl.options.end())
      SLIM_THROW(ConfigError, "usage: slimtrain export CHECKPOINT_OR_SAVE_DIR --out model.onnx "
                 "[--fp32 | --int8-weights]");
    return train::runExport(cl.positional[0], out->second, cl.flags.count("--fp32") != 0,
                            cl.flags.count("--int8-weights") != 0);
  }
  SLIM_THROW(ConfigError, "unknown command `", cl.command, "`");
}

int runCompress(const config::Config& cfg, const CommandLine& cl, comm::Communicator& comm) {
  return train::runCompress(cfg, comm, cl.flags.count("--force-resume") != 0);
}

}  // namespace slim::launcher
