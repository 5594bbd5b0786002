// Hand-written argument parsing (no dependency): every subcommand declares its
// options here so --help and the parser cannot disagree.
#include "launcher/cli.h"

#include <set>

#include "slim_config.h"
#include "trainer/config/suggest.h"
#include "trainer/core/error.h"

namespace slim::launcher {
namespace {

struct CommandSpec {
  const char* name;
  const char* args;
  const char* summary;
  std::set<std::string> valued;  // options taking a value
  std::set<std::string> flags;   // boolean options
  const char* details;
};

const std::vector<CommandSpec>& specs() {
  static const std::vector<CommandSpec> kSpecs = {
      {"train", "CONFIG.yaml", "train a model (FP32) with cross-entropy on labels",
       {"--set"}, {"--force-resume", "--json"},
       "Trains Global.model (zoo:mobilenet_tiny, zoo:lenet5) or the model in\n"
       "Global.model_dir on Global.Data, evaluating top-1 every TrainConfig.eval_iter\n"
       "iterations. Writes <save_dir>/model.onnx (FP32) and <save_dir>/metrics.jsonl.\n"
       "Runs on N ranks under mpirun/srun (data parallel; batch_size is per rank).\n"
       "Checkpoints to Checkpoint.dir (default <save_dir>/checkpoints) every\n"
       "Checkpoint.every_iters and resumes from the newest one (Checkpoint.resume:\n"
       "auto|never|FILE). --force-resume resumes even when the config changed.\n"
       "stdout: one JSON object (top1, iterations, images_per_s, loss, model) at the\n"
       "end, with or without --json; logs and the progress bar go to stderr."},
      {"compress", "CONFIG.yaml", "ACT compression: QAT (+PACT), GMP pruning, distillation",
       {"--set"}, {"--force-resume", "--json"},
       "Compresses the model in Global.model_dir with the Quantization/QuantAware,\n"
       "Distillation, UnstructurePrune and TrainConfig sections (PaddleSlim ACT\n"
       "semantics). Data: Global.data_dir (ACT's train_list.txt/val_list.txt of JPEG\n"
       "or PNG files) or Global.Data (format list|imagefolder|hdf5|idx; docs/DATA.md).\n"
       "Writes <save_dir>/model.onnx, report.json and metrics.jsonl; ONNX Runtime\n"
       "checks the export on the evaluated batches; checkpoints to Checkpoint.dir\n"
       "and resumes automatically.\n"
       "--force-resume resumes even when the config changed the trajectory.\n"
       "stdout: report.json's object at the end, with or without --json; logs and\n"
       "the progress bar go to stderr."},
      {"eval", "CONFIG.yaml", "evaluate top-1 on Global.Data.eval_*; prints {\"top1\": ...}",
       {"--set", "--model"}, {"--json"},
       "--model PATH evaluates that ONNX/Paddle model instead of the configured one.\n"
       "stdout: one JSON object (top1, correct, total, bad_images_skipped, model),\n"
       "with or without --json."},
      {"inspect", "MODEL", "list inputs, outputs, tensors, parameters and what ACT would touch",
       {"--config"}, {"--json", "--ops"},
       "MODEL is an .onnx file, a Paddle .pdmodel/__model__, a folder holding one\n"
       "or zoo:<name>.\n"
       "--config CONFIG.yaml applies its Quantization/UnstructurePrune sections.\n"
       "--json prints machine-readable output (docs/CLI.md has the schema).\n"
       "`slimtrain inspect --ops [--json]` (no MODEL) lists the op types a model may\n"
       "contain: every op in this binary's op registry."},
      {"infer", "MODEL", "run a model on TensorProto inputs and write output_<i>.pb",
       {"--input", "--output-dir"}, {"--json"},
       "Usage: slimtrain infer MODEL --input a.pb [--input b.pb ...] --output-dir DIR [--json]\n"
       "MODEL: an .onnx file, a Paddle .pdmodel/__model__ (params beside it) or a\n"
       "folder holding one, or zoo:<name> -- what inspect reads.\n"
       "Prints each output written (file, name, shape, dtype); --json: as JSON."},
      {"export", "CHECKPOINT_OR_SAVE_DIR", "write the ONNX model of a checkpoint or save_dir",
       {"--out"}, {"--fp32", "--int8-weights", "--json"},
       "Usage: slimtrain export CHECKPOINT_OR_SAVE_DIR --out model.onnx [--fp32 | --int8-weights]\n"
       "       [--json]\n"
       "Rebuilds the run's graph from the config stored in the checkpoint (run it\n"
       "where that run's relative model/data paths resolve), loads the state and\n"
       "writes what compress would: INT8 QDQ for quantized jobs (--fp32: the float\n"
       "student with its pruned zeros), the FP32 model for train checkpoints.\n"
       "CHECKPOINT_OR_SAVE_DIR: a ckpt-*.h5 file, a checkpoints/ folder (newest\n"
       "valid one) or a save_dir holding checkpoints/.\n"
       "--int8-weights: int8 weights on every quantized op. By default ops with a\n"
       "signed input (uint8 zero point 128) get uint8 weights, which ONNX Runtime\n"
       "multiplies exactly on x86 without VNNI; int8 there is faster (U8S8) but\n"
       "pairs of products may saturate in int16. Exact on VNNI and ARM CPUs.\n"
       "--json: prints what was written (output, format, checkpoint, iteration, bytes)."},
      {"checkpoint", "show FILE", "summarise a checkpoint file", {}, {"--json"},
       "Usage: slimtrain checkpoint show FILE [--json]\n"
       "Prints where the run stood (iteration, epoch, sample offset, ranks, seed) and\n"
       "every tensor with its shape and statistics; --json: the position and each\n"
       "group's tensors with dtype and shape."},
  };
  return kSpecs;
}

const CommandSpec* find(const std::string& name) {
  for (const auto& s : specs())
    if (name == s.name) return &s;
  return nullptr;
}

}  // namespace

std::string usage(const std::string& command) {
  std::string u;
  if (const CommandSpec* s = find(command)) {
    u = std::string("usage: slimtrain ") + s->name + " " + s->args;
    for (const auto& v : s->valued) u += " [" + v + " VALUE]";
    for (const auto& f : s->flags) u += " [" + f + "]";
    u += std::string("\n\n") + s->summary + ".\n\n" + s->details + "\n";
    if (s->valued.count("--set"))
      u += "\n--set Section.key=value overrides a config key (repeatable), e.g.\n"
           "  --set TrainConfig.epochs=1 --set Global.Data.mean=[0.5]\n";
    return u;
  }
  u = "slimtrain " SLIM_VERSION
      " - compress neural networks like PaddleSlim ACT (QAT + PACT, GMP pruning,\n"
      "distillation) on one or many ranks (mpirun / srun), with exact resume.\n\n"
      "usage: slimtrain COMMAND [ARGS] [--help]\n\ncommands:\n";
  for (const auto& s : specs()) {
    std::string head = std::string("  ") + s.name + " " + s.args;
    if (head.size() < 36) head += std::string(36 - head.size(), ' ');
    u += head + " " + s.summary + "\n";
  }
  u += "\nexit codes: 0 done, 1 runtime failure, 2 bad usage/config/model/data or a\n"
       "checkpoint directory in use, 3 training diverged (NaN/Inf; the message names\n"
       "the last good checkpoint), 75 checkpointed and stopped on SIGUSR1/SIGTERM\n"
       "(requeue me).\n"
       "`slimtrain COMMAND --help` describes a command. Every command takes --json:\n"
       "one JSON object on stdout with \"command\" and \"schema_version\" keys\n"
       "(train, compress and eval always print theirs). Every command also takes\n"
       "--quiet (errors and the final result only), --verbose (debug lines: every\n"
       "quantized op, every teacher node) or --log-level debug|info|warn|error.\n";
  return u;
}

CommandLine parseCommandLine(int argc, char** argv) {
  CommandLine cl;
  if (argc < 2) {
    cl.help = true;
    return cl;
  }
  std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    cl.help = true;
    if (argc > 2) cl.command = argv[2];
    return cl;
  }
  if (first == "--version") {
    cl.command = "version";
    return cl;
  }
  const CommandSpec* spec = find(first);
  if (spec == nullptr) {
    std::vector<std::string> names;
    for (const auto& s : specs()) names.push_back(s.name);
    SLIM_THROW(ConfigError, "unknown command '", first, "'", config::didYouMean(first, names),
               "; run `slimtrain --help`");
  }
  cl.command = first;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      cl.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      cl.positional.push_back(a);
      continue;
    }
    std::string value;
    bool has_eq = false;
    if (auto eq = a.find('='); eq != std::string::npos && a != "--set") {
      // --out=x form (but not for --set, whose value itself contains '=')
      if (spec->valued.count(a.substr(0, eq)) || a.substr(0, eq) == "--log-level") {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_eq = true;
      }
    }
    if (a == "--quiet" || a == "-q" || a == "--verbose" || a == "-v") {
      cl.log_level = a == "--quiet" || a == "-q" ? "error" : "debug";
    } else if (a == "--log-level") {
      if (!has_eq && i + 1 >= argc) SLIM_THROW(ConfigError, "option --log-level needs a value");
      if (!has_eq) value = argv[++i];
      if (value != "debug" && value != "info" && value != "warn" && value != "error")
        SLIM_THROW(ConfigError, "--log-level: expected debug, info, warn or error, found '",
                   value, "'");
      cl.log_level = value;
    } else if (spec->flags.count(a)) {
      cl.flags[a] = true;
    } else if (spec->valued.count(a)) {
      if (!has_eq) {
        if (i + 1 >= argc) SLIM_THROW(ConfigError, "option ", a, " needs a value");
        value = argv[++i];
      }
      if (a == "--set")
        cl.sets.push_back(value);
      else if (a == "--input")
        cl.inputs.push_back(value);
      else
        cl.options[a] = value;
    } else {
      std::vector<std::string> known = {"--quiet", "--verbose", "--log-level", "--help"};
      known.insert(known.end(), spec->flags.begin(), spec->flags.end());
      known.insert(known.end(), spec->valued.begin(), spec->valued.end());
      SLIM_THROW(ConfigError, "unknown option '", a, "' for `slimtrain ", cl.command, "`",
                 config::didYouMean(a, known), "; see `slimtrain ", cl.command, " --help`");
    }
  }
  return cl;
}

}  // namespace slim::launcher
