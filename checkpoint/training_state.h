// TrainingState: everything a resumed run needs, as generic named tensors,
// attributes and uint64 words in seven fixed groups (schema in schema.h).
// The trainer fills it; the checkpoint layer never interprets the contents,
// so new kinds of state need no schema change. Also: a human summary
// (`slimtrain checkpoint show`), a bytewise diff and a layout check.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::checkpoint {

/// A scalar group attribute: int64, float64 or string.
using AttrValue = std::variant<int64_t, double, std::string>;

/// One HDF5 group of state. Names are arbitrary non-empty strings; a name may
/// not be used both as a tensor and as a words array of the same group.
struct Group {
  /// Tensors of dtype float32, int64, uint8, int8 or int32 (row-major).
  std::map<std::string, Tensor> tensors;
  /// Scalar attributes (e.g. schedule position, optimizer step count).
  std::map<std::string, AttrValue> attrs;
  /// Raw uint64 arrays (e.g. RNG states, counters), stored 1-D.
  std::map<std::string, std::vector<uint64_t>> words;

  bool empty() const { return tensors.empty() && attrs.empty() && words.empty(); }
};

/// The whole resumable state of a run (DESIGN.md §5).
struct TrainingState {
  int64_t step = 0;           ///< iterations completed
  int64_t epoch = 0;          ///< current epoch
  int64_t sample_offset = 0;  ///< global samples of this epoch consumed
  int64_t world_size = 1;     ///< ranks of the run that wrote it
  uint64_t seed = 0;          ///< the run's base seed
  std::string config_yaml;    ///< the full resolved config
  int64_t created_unix = 0;   ///< set on save when 0; ignored by diffStates

  Group params;     ///< student weights, BN affine, PACT alphas (float32)
  Group buffers;    ///< BN running stats, observer state
  Group masks;      ///< uint8 pruning masks
  Group quant;      ///< current quantization scales
  Group optimizer;  ///< momentum / Adam moments; attrs: step count
  Group schedule;   ///< attrs: GMP position, ratio, LR scheduler state
  Group rng;        ///< generator states (words)

  /// The seven groups with their on-disk names, in schema order.
  std::vector<std::pair<const char*, Group*>> groups();
  std::vector<std::pair<const char*, const Group*>> groups() const;
};

/// Compares two states dataset by dataset, bytewise (created_unix ignored).
/// @return one line per difference ("params/conv1.weight: byte 12 differs
///         (element 3: 0.5 vs 0.25)"); empty when identical
std::vector<std::string> diffStates(const TrainingState& a, const TrainingState& b);

/// Checks that `found` has exactly the tensors (names, dtypes, shapes) and
/// words arrays (names, lengths) of `expected` — e.g. a template built from
/// the current model. Values and attributes are not compared.
/// @param file named in the message
/// @throws CheckpointError naming the file, the dataset, expected vs found
void checkLayout(const TrainingState& expected, const TrainingState& found,
                 const std::string& file);

/// Human summary: step, epoch, world size, seed, each group with counts,
/// tensors with shapes and statistics (min/max/mean; zeros for masks),
/// attributes, words, and the config.
std::string describeCheckpoint(const TrainingState& state);

/// Loads `file` (validating it) and describes it; the header names the file.
/// @throws CheckpointError when the file is unusable
std::string describeCheckpointFile(const std::filesystem::path& file);

}  // namespace slim::checkpoint
