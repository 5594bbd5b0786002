// Reading Paddle parameter records (LoDTensor SerializeToStream layout,
// docs/paddle-format.md §3) from a combined params file or from one file per
// variable. Every error names the file, the variable and the byte offset.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::models {

/// A parameter the program declares: its name and VarDesc dims (-1 = any).
struct PaddleParamSpec {
  std::string name;
  Shape dims;
  bool check_dims = true;  ///< false when the VarDesc carries no dims
};

/// Reads one record starting at `offset` of `data[0, size)` and advances
/// `offset` past it. FP32 stays float32, FP64 and FP16 become float32, INT64,
/// INT32, INT8 and UINT8 keep their type; other element types are refused.
/// @param label  file name for messages; @param var  variable name for messages
/// @throws ModelError naming label, var and the byte offset of the problem.
Tensor readPaddleRecord(const void* data, size_t size, size_t& offset,
                        const std::string& label, const std::string& var);

/// Reads a combined params buffer: one record per spec, in the given order
/// (callers pass specs sorted by name), ending exactly at `size`. Checks each
/// record's dims against the spec.
std::map<std::string, Tensor> readPaddleCombinedBytes(const void* data, size_t size,
                                                      const std::string& label,
                                                      const std::vector<PaddleParamSpec>& specs);

/// Reads the combined params file at `path` (see readPaddleCombinedBytes).
std::map<std::string, Tensor> readPaddleCombinedParams(const std::string& path,
                                                       const std::vector<PaddleParamSpec>& specs);

/// Reads separate params: file `dir`/`spec.name` holds exactly one record.
std::map<std::string, Tensor> readPaddleSeparateParams(const std::string& dir,
                                                       const std::vector<PaddleParamSpec>& specs);

}  // namespace slim::models
