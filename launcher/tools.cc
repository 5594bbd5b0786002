// Tool subcommands.
#include "launcher/tools.h"

#include <iostream>

#include "trainer/core/error.h"
#include "trainer/models/onnx/onnx_infer.h"

namespace slim::launcher {

int runTool(const CommandLine& cl) {
  if (cl.command == "infer") {
    if (cl.positional.size() != 1 || cl.inputs.empty() || !cl.options.count("--output-dir"))
      SLIM_THROW(ConfigError, "usage: slimtrain infer MODEL --input a.pb [--input b.pb ...] "
                 "--output-dir DIR");
    models::runOnnxInfer(cl.positional[0], cl.inputs, cl.options.at("--output-dir"));
    return kExitOk;
  }
  SLIM_THROW(ConfigError, "`slimtrain ", cl.command, "` is not available in this build yet");
}

int runCompress(const config::Config&, const CommandLine&, comm::Communicator&) {
  SLIM_THROW(ConfigError, "`slimtrain compress` is not available in this build yet");
}

}  // namespace slim::launcher
