// Reading a Paddle ProgramDesc (`model.pdmodel`, `__model__`, ...) and a
// proto-free summary of it (ops, vars, the persistable parameter list) for
// inspection and tests. Parsing never needs the params file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace paddle::framework::proto {
class ProgramDesc;
}

namespace slim::models {

/// One variable of block 0.
struct PaddleVarInfo {
  std::string name;
  int kind = -1;          ///< VarType.Type of the variable (7 = LOD_TENSOR, 9 = FEED_MINIBATCH...)
  int dtype = -1;         ///< element VarType.Type (5 = FP32), -1 when not a tensor
  Shape dims;             ///< declared dims, -1 for unknown (batch)
  bool has_dims = false;  ///< false when the var carries no tensor description
  bool persistable = false;
};

/// One op of block 0: type, slots and attribute names.
struct PaddleOpInfo {
  std::string type;
  std::map<std::string, std::vector<std::string>> inputs;   ///< slot -> var names
  std::map<std::string, std::vector<std::string>> outputs;  ///< slot -> var names
  std::vector<std::string> attr_names;
};

/// A parsed program, summarised (block 0 only; sub-blocks are counted).
struct PaddleProgramInfo {
  int64_t version = 0;  ///< ProgramDesc.version (major*1e6 + minor*1e3 + patch), 0 if absent
  int num_blocks = 0;
  std::vector<PaddleVarInfo> vars;
  std::vector<PaddleOpInfo> ops;
  /// Names of the tensors the params file holds, in file order (sorted, §4).
  std::vector<std::string> param_names;

  /// Distinct op types in order of first appearance.
  std::vector<std::string> opTypes() const;
  /// The var called `name`, or nullptr.
  const PaddleVarInfo* var(const std::string& name) const;
};

/// Parses the ProgramDesc in file `path` and summarises block 0.
/// @throws ModelError naming the file (missing, `.json` PIR program, corrupt
///         protobuf with the byte offset of the first malformed field, no block 0).
PaddleProgramInfo parsePaddleProgram(const std::string& path);

/// Same, from bytes in memory; `label` names the source in messages.
PaddleProgramInfo parsePaddleProgramBytes(const void* data, size_t size,
                                          const std::string& label);

namespace detail {

/// Parses bytes into `out` or throws ModelError naming `label` and the byte
/// offset of the first structural problem found by a wire-level scan.
void parseProgramDesc(const void* data, size_t size, const std::string& label,
                      paddle::framework::proto::ProgramDesc& out);

/// Reads a whole file into memory; throws ModelError when it cannot.
std::string readFileBytes(const std::string& path, const char* what);

/// Element type names ("FP32") and sizes in bytes (0 = not a POD type).
const char* varTypeName(int type);
size_t podTypeSize(int type);

/// Persistable vars of block 0 that the params file stores, sorted by name
/// (skips feed/fetch/raw/reader vars, as Paddle's LoadPersistables does).
std::vector<std::string> paramNames(const paddle::framework::proto::ProgramDesc& p);

}  // namespace detail
}  // namespace slim::models
