// Tool subcommands.
#include "launcher/tools.h"

#include <filesystem>
#include <iostream>

#include "trainer/core/error.h"
#include "trainer/models/onnx/onnx_infer.h"
#include "trainer/models/onnx/tensor_proto.h"
#include "trainer/ops/op.h"
#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/training_state.h"
#include "trainer/train/metrics.h"
#include "trainer/train/compress_command.h"
#include "trainer/train/inspect.h"

namespace slim::launcher {
namespace {

// `checkpoint show --json`: where the run stood and every tensor's dtype and
// shape, group by group (the same schema conventions as inspect: shapes as
// arrays).
std::string checkpointJson(const std::string& file) {
  const checkpoint::TrainingState st = checkpoint::CheckpointManager::load(file);
  train::JsonObject o = train::commandJson("checkpoint show");
  o.add("file", file).add("step", st.step).add("epoch", st.epoch);
  o.add("sample_offset", st.sample_offset).add("world_size", st.world_size);
  o.add("seed", static_cast<int64_t>(st.seed)).add("created_unix", st.created_unix);
  train::JsonObject groups;
  for (const auto& [name, g] : st.groups()) {
    std::string tensors = "[";
    for (const auto& [tn, t] : g->tensors)
      tensors += std::string(tensors.size() > 1 ? ", " : "") + "{\"name\": " +
                 train::jsonString(tn) + ", \"dtype\": " + train::jsonString(dtypeName(t.dtype())) +
                 ", \"shape\": " + train::jsonShape(t.shape()) + "}";
    groups.addRaw(name, tensors + "]");
  }
  o.addRaw("groups", groups.str());
  return o.str();
}

// `inspect --ops`: the registry's op types, sorted (one a line, or
// {"ops": [...]}). docs/MODELS.md's op list is generated from it.
std::string opsList(bool json) {
  const std::vector<std::string> types = ops::OpRegistry::get().modelTypes();
  std::string out;
  if (!json) {
    for (const auto& t : types) out += t + "\n";
    return out;
  }
  for (const auto& t : types) out += std::string(out.empty() ? "" : ", ") + train::jsonString(t);
  return "{\"ops\": [" + out + "]}\n";
}

// What infer wrote, read back from the files: one line per output (text) or
// {"outputs": [{"name", "file", "dtype", "shape"}]}.
std::string inferSummary(const std::string& model, const std::vector<std::string>& written,
                         bool json) {
  std::string text, list = "[";
  for (size_t i = 0; i < written.size(); ++i) {
    std::string name;
    const Tensor t = models::readTensorProto(written[i], &name);
    text += written[i] + ": " + name + " " + shapeStr(t.shape()) + " " + dtypeName(t.dtype()) + "\n";
    list += std::string(i ? ", " : "") + "{\"name\": " + train::jsonString(name) +
            ", \"file\": " + train::jsonString(written[i]) + ", \"dtype\": " +
            train::jsonString(dtypeName(t.dtype())) + ", \"shape\": " + train::jsonShape(t.shape()) +
            "}";
  }
  if (!json) return text;
  train::JsonObject o = train::commandJson("infer");
  o.add("model", model).addRaw("outputs", list + "]");
  return o.str() + "\n";
}

}  // namespace

int runTool(const CommandLine& cl) {
  if (cl.command == "infer") {
    if (cl.positional.size() != 1 || cl.inputs.empty() || !cl.options.count("--output-dir"))
      SLIM_THROW(ConfigError, "usage: slimtrain infer MODEL --input a.pb [--input b.pb ...] "
                 "--output-dir DIR");
    const std::vector<std::string> written =
        models::runOnnxInfer(cl.positional[0], cl.inputs, cl.options.at("--output-dir"));
    std::cout << inferSummary(cl.positional[0], written, cl.flags.count("--json") != 0);
    return kExitOk;
  }
  if (cl.command == "inspect" && cl.flags.count("--ops") != 0) {
    if (!cl.positional.empty())
      SLIM_THROW(ConfigError, "usage: slimtrain inspect --ops [--json] (no MODEL; found '",
                 cl.positional[0], "')");
    std::cout << opsList(cl.flags.count("--json") != 0);
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
      SLIM_THROW(ConfigError, "usage: slimtrain checkpoint show FILE [--json]");
    const std::string& file = cl.positional[1];
    if (!std::filesystem::is_regular_file(file))
      SLIM_THROW(ConfigError, "checkpoint ", file,
                 std::filesystem::exists(file) ? " is not a file" : " does not exist");
    if (cl.flags.count("--json") != 0) {
      std::cout << checkpointJson(file) << "\n";
      return kExitOk;
    }
    std::cout << checkpoint::describeCheckpointFile(file);
    return kExitOk;
  }
  if (cl.command == "export") {
    auto out = cl.options.find("--out");
    if (cl.positional.size() != 1 || out == cl.options.end())
      SLIM_THROW(ConfigError, "usage: slimtrain export CHECKPOINT_OR_SAVE_DIR --out model.onnx "
                 "[--fp32 | --int8-weights]");
    train::ExportSummary sum;
    const int rc = train::runExport(cl.positional[0], out->second, cl.flags.count("--fp32") != 0,
                                    cl.flags.count("--int8-weights") != 0, &sum);
    if (cl.flags.count("--json") != 0) {
      train::JsonObject o = train::commandJson("export");
      o.add("output", out->second).add("format", sum.format).add("checkpoint", sum.checkpoint);
      o.add("iteration", sum.iteration).add("bytes", sum.bytes);
      std::cout << o.str() << "\n";
    }
    return rc;
  }
  SLIM_THROW(ConfigError, "unknown command `", cl.command, "`");
}

int runCompress(const config::Config& cfg, const CommandLine& cl, comm::Communicator& comm) {
  return train::runCompress(cfg, comm, cl.flags.count("--force-resume") != 0);
}

}  // namespace slim::launcher
