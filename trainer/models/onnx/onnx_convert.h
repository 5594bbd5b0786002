// Internal: conversions between ONNX protobuf messages (Debian's libonnx
// classes) and slimtrain's Tensor / ops::Attrs / DType. Shared by the ONNX
// importer, exporter and the TensorProto file helpers; not a public header.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "trainer/core/tensor.h"
#include "trainer/ops/attrs.h"

namespace slim::models::detail {

/// How tensor element types map onto slimtrain dtypes.
enum class IntPolicy {
  kKeep,   ///< int32 stays int32, bool becomes uint8 (TensorProto files)
  kWiden,  ///< int32 becomes int64 (initializers and Constant values)
};

/// Name of an ONNX TensorProto::DataType for messages ("FLOAT", "BOOL", ...).
std::string elemTypeName(int elem_type);

/// ONNX element type -> slimtrain dtype under `policy`; throws ModelError
/// ("unsupported element type ...") naming `what` for types without one.
DType dtypeFromElemType(int elem_type, IntPolicy policy, const std::string& what);

/// slimtrain dtype -> ONNX element type.
int elemTypeFromDType(DType t);

/// Converts a TensorProto (raw_data or typed fields) to a Tensor. double
/// becomes float32. Throws ModelError naming `what` for external data, string
/// tensors, unsupported element types and data of the wrong size.
Tensor tensorFromProto(const onnx::TensorProto& p, IntPolicy policy,
                       const std::string& what);

/// Fills `p` with `t` (dims, data_type, raw_data little-endian) and `name`.
void tensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* p);

/// Converts one NodeProto attribute; throws ModelError naming node and
/// attribute for graph/sparse/type attributes.
ops::AttrValue attrFromProto(const onnx::AttributeProto& a, const std::string& node);

/// Fills `a` (name, type and value) from an attribute value.
void attrToProto(const std::string& name, const ops::AttrValue& v,
                 onnx::AttributeProto* a);

}  // namespace slim::models::detail
