// Conversions between ONNX protobuf messages and Tensor / Attrs. Data is
// copied (raw_data is little-endian, like every host slimtrain runs on).
#include "trainer/models/onnx/onnx_convert.h"

#include <cstring>
#include <limits>

namespace slim::models::detail {

using onnx::TensorProto;

std::string elemTypeName(int t) {
  if (TensorProto::DataType_IsValid(t))
    return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(t));
  return "type " + std::to_string(t);
}

DType dtypeFromElemType(int t, IntPolicy policy, const std::string& what) {
  switch (t) {
    case TensorProto::FLOAT:
    case TensorProto::DOUBLE:
      return DType::kF32;
    case TensorProto::INT64:
      return DType::kI64;
    case TensorProto::INT32:
      return policy == IntPolicy::kWiden ? DType::kI64 : DType::kI32;
    case TensorProto::UINT8:
    case TensorProto::BOOL:
      return DType::kU8;
    case TensorProto::INT8:
      return DType::kI8;
    default:
      SLIM_THROW(ModelError, what, ": unsupported element type ", elemTypeName(t));
  }
}

int elemTypeFromDType(DType t) {
  switch (t) {
    case DType::kF32: return TensorProto::FLOAT;
    case DType::kI64: return TensorProto::INT64;
    case DType::kU8: return TensorProto::UINT8;
    case DType::kI8: return TensorProto::INT8;
    case DType::kI32: return TensorProto::INT32;
  }
  SLIM_THROW(ModelError, "unknown dtype ", static_cast<int>(t));
}

namespace {

// Size in bytes of one element as stored in raw_data.
size_t rawElemSize(int t) {
  switch (t) {
    case TensorProto::DOUBLE: case TensorProto::INT64: return 8;
    case TensorProto::FLOAT: case TensorProto::INT32: return 4;
    default: return 1;  // UINT8, INT8, BOOL
  }
}

// Stores element i of type `src` (already a double/int64 value) into `t`.
template <class V>
void put(Tensor& t, int64_t i, V v) {
  switch (t.dtype()) {
    case DType::kF32: t.data<float>()[i] = static_cast<float>(v); break;
    case DType::kI64: t.data<int64_t>()[i] = static_cast<int64_t>(v); break;
    case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DType::kU8: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    case DType::kI8: t.data<int8_t>()[i] = static_cast<int8_t>(v); break;
  }
}

// Decodes element i of little-endian raw bytes of ONNX type `et`.
void putRaw(Tensor& t, int64_t i, const char* raw, int et) {
  switch (et) {
    case TensorProto::FLOAT: { float v; std::memcpy(&v, raw + 4 * i, 4); put(t, i, v); break; }
    case TensorProto::DOUBLE: { double v; std::memcpy(&v, raw + 8 * i, 8); put(t, i, v); break; }
    case TensorProto::INT64: { int64_t v; std::memcpy(&v, raw + 8 * i, 8); put(t, i, v); break; }
    case TensorProto::INT32: { int32_t v; std::memcpy(&v, raw + 4 * i, 4); put(t, i, v); break; }
    case TensorProto::INT8: put(t, i, static_cast<int8_t>(raw[i])); break;
    case TensorProto::BOOL: put(t, i, raw[i] != 0 ? 1 : 0); break;
    default: put(t, i, static_cast<uint8_t>(raw[i])); break;
  }
}

}  // namespace

Tensor tensorFromProto(const TensorProto& p, IntPolicy policy, const std::string& what) {
  if (p.data_location() == TensorProto::EXTERNAL)
    SLIM_THROW(ModelError, what, ": tensor data is stored externally (data_location "
               "EXTERNAL); external data is not supported, save the model with the "
               "weights inside the .onnx file");
  if (p.has_segment())
    SLIM_THROW(ModelError, what, ": segmented tensors are not supported");
  const int et = p.data_type();
  DType dt = dtypeFromElemType(et, policy, what);
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : p.dims()) {
    if (d < 0) SLIM_THROW(ModelError, what, ": negative dimension ", d);
    if (d > 0 && numel > (int64_t{1} << 40) / d)
      SLIM_THROW(ModelError, what, ": tensor too large");
    shape.push_back(d);
    numel *= d;
  }
  // Check that the data matches the shape before allocating, so a small file
  // declaring a huge shape fails cleanly instead of allocating it.
  if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    const size_t want = static_cast<size_t>(numel) * rawElemSize(et);
    if (raw.size() != want)
      SLIM_THROW(ModelError, what, ": raw_data holds ", raw.size(), " bytes, shape ",
                 shapeStr(shape), " of ", elemTypeName(et), " needs ", want);
    Tensor t(shape, dt);
    for (int64_t i = 0; i < numel; ++i) putRaw(t, i, raw.data(), et);
    return t;
  }
  int64_t have = 0;
  switch (et) {
    case TensorProto::FLOAT: have = p.float_data_size(); break;
    case TensorProto::DOUBLE: have = p.double_data_size(); break;
    case TensorProto::INT64: have = p.int64_data_size(); break;
    default: have = p.int32_data_size(); break;  // INT32, INT8, UINT8, BOOL
  }
  if (have != numel)
    SLIM_THROW(ModelError, what, ": holds ", have, " values, shape ", shapeStr(shape),
               " needs ", numel);
  Tensor t(shape, dt);
  switch (et) {
    case TensorProto::FLOAT:
      for (int64_t i = 0; i < numel; ++i) put(t, i, p.float_data(static_cast<int>(i)));
      break;
    case TensorProto::DOUBLE:
      for (int64_t i = 0; i < numel; ++i) put(t, i, p.double_data(static_cast<int>(i)));
      break;
    case TensorProto::INT64:
      for (int64_t i = 0; i < numel; ++i) put(t, i, p.int64_data(static_cast<int>(i)));
      break;
    default:
      for (int64_t i = 0; i < numel; ++i) put(t, i, p.int32_data(static_cast<int>(i)));
      break;
  }
  return t;
}

void tensorToProto(const Tensor& t, const std::string& name, TensorProto* p) {
  p->Clear();
  if (!name.empty()) p->set_name(name);
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_data_type(elemTypeFromDType(t.dtype()));
  if (t.defined() && t.bytes() > 0)
    p->set_raw_data(static_cast<const char*>(t.raw()), t.bytes());
  else
    p->set_raw_data(std::string());
}

ops::AttrValue attrFromProto(const onnx::AttributeProto& a, const std::string& node) {
  using A = onnx::AttributeProto;
  const std::string what = "node '" + node + "' attribute '" + a.name() + "'";
  A::AttributeType type = a.type();
  if (type == A::UNDEFINED) {  // very old producers: infer from the field set
    if (a.has_f()) type = A::FLOAT;
    else if (a.has_i()) type = A::INT;
    else if (a.has_s()) type = A::STRING;
    else if (a.has_t()) type = A::TENSOR;
    else if (a.floats_size()) type = A::FLOATS;
    else if (a.ints_size()) type = A::INTS;
    else if (a.strings_size()) type = A::STRINGS;
  }
  switch (type) {
    case A::INT: return static_cast<int64_t>(a.i());
    case A::FLOAT: return a.f();
    case A::STRING: return a.s();
    case A::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case A::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case A::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case A::TENSOR: return tensorFromProto(a.t(), IntPolicy::kWiden, what);
    default:
      SLIM_THROW(ModelError, what, ": unsupported attribute type ",
                 A::AttributeType_Name(type));
  }
}

void attrToProto(const std::string& name, const ops::AttrValue& v,
                 onnx::AttributeProto* a) {
  using A = onnx::AttributeProto;
  a->set_name(name);
  if (auto p = std::get_if<int64_t>(&v)) {
    a->set_type(A::INT);
    a->set_i(*p);
  } else if (auto p = std::get_if<float>(&v)) {
    a->set_type(A::FLOAT);
    a->set_f(*p);
  } else if (auto p = std::get_if<std::string>(&v)) {
    a->set_type(A::STRING);
    a->set_s(*p);
  } else if (auto p = std::get_if<std::vector<int64_t>>(&v)) {
    a->set_type(A::INTS);
    for (int64_t x : *p) a->add_ints(x);
  } else if (auto p = std::get_if<std::vector<float>>(&v)) {
    a->set_type(A::FLOATS);
    for (float x : *p) a->add_floats(x);
  } else if (auto p = std::get_if<std::vector<std::string>>(&v)) {
    a->set_type(A::STRINGS);
    for (const auto& x : *p) a->add_strings(x);
  } else if (auto p = std::get_if<Tensor>(&v)) {
    a->set_type(A::TENSOR);
    tensorToProto(*p, "", a->mutable_t());
  }
}

}  // namespace slim::models::detail
