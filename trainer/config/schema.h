// Internal: the key tables of every section (used both to reject unknown keys
// while parsing and to validate --set paths before applying them), and the
// per-section parsers shared by load.cc.
#pragma once

#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/config/yaml_node.h"

namespace slim::config::detail {

/// Sections slimtrain parses.
extern const std::vector<std::string> kSections;
/// ACT sections that slimtrain rejects with "not supported yet".
extern const std::vector<std::string> kUnsupportedSections;

/// Known keys of the map at a dotted path ("", "Global", "Global.Data",
/// "TrainConfig.optimizer_builder.optimizer", ...); nullptr if the value at
/// that path is not a map with fixed keys. "Quantization" is read as
/// "QuantAware"; nested LinearWarmup learning_rate maps are handled.
const std::vector<std::string>* knownKeysAt(const std::string& path);

/// Older / newer spellings of the same key inside one section
/// ({"Distillation", "distill_lambda", "alpha"}, ...).
struct KeyAlias {
  std::string section, legacy, current;
};
extern const std::vector<KeyAlias> kKeyAliases;

// Section parsers: `n` is the section node (may be absent/null = defaults).
Global parseGlobal(const Node& n);
Checkpoint parseCheckpoint(const Node& n, const Global& g);
Distributed parseDistributed(const Node& n);
QuantAware parseQuant(const Node& n);
Distillation parseDistillation(const Node& n);
UnstructurePrune parsePrune(const Node& n);
TrainConfig parseTrain(const Node& n);

/// The value of `current` or of its legacy spelling (error if both given).
Node aliased(const Node& section, const std::string& current, const std::string& legacy);

}  // namespace slim::config::detail
