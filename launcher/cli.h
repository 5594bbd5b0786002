// Command-line parsing for the `slimtrain` executable: subcommand, one
// positional argument, repeatable options, and --help text per subcommand.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace slim::launcher {

struct CommandLine {
  std::string command;                 ///< train, compress, eval, inspect, ...
  std::vector<std::string> positional; ///< CONFIG / MODEL / FILE
  std::vector<std::string> sets;       ///< --set Section.key=value (repeatable)
  std::vector<std::string> inputs;     ///< --input a.pb (repeatable, infer)
  std::map<std::string, std::string> options;  ///< --model, --out, --output-dir, ...
  std::map<std::string, bool> flags;           ///< --json, --force-resume, ...
  /// --quiet ("error"), --verbose ("debug") or --log-level LEVEL; "" = info.
  std::string log_level;
  bool help = false;
};

/// Parses argv; throws ConfigError (exit 2) naming the bad argument.
CommandLine parseCommandLine(int argc, char** argv);

/// Usage text: general when `command` is empty, else the subcommand's.
std::string usage(const std::string& command);

}  // namespace slim::launcher
