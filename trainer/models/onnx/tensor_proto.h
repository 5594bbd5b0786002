// ONNX TensorProto files (.pb): the format of the input_<i>.pb/output_<i>.pb
// pairs in ONNX's test suite and model zoo, and of `slimtrain infer`'s
// inputs and outputs.
#pragma once

#include <string>

#include "trainer/core/tensor.h"

namespace slim::models {

/// Reads one serialized TensorProto. Data may be in raw_data or the typed
/// fields. Element types: float, double (read as float32), int64, int32,
/// uint8, int8, bool (read as uint8).
/// @param path  the .pb file
/// @param name  if non-null, receives the tensor's name ("" when unnamed)
/// @return the tensor
/// @throws ModelError naming the file when it is unreadable, corrupt or of an
///         unsupported element type
Tensor readTensorProto(const std::string& path, std::string* name = nullptr);

/// Writes `t` as a serialized TensorProto (raw_data) named `name`.
/// @throws ModelError naming the file when it cannot be written
void writeTensorProto(const Tensor& t, const std::string& path,
                      const std::string& name = "");

}  // namespace slim::models
