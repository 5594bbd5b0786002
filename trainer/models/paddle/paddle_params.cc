// Paddle params records: version(u32)=0, lod levels(u64) + levels, tensor
// version(u32)=0, desc size(i32), TensorDesc protobuf, raw LE elements.
// All reads are bounds-checked against the buffer; nothing trusts a size field.
#include "trainer/models/paddle/paddle_params.h"

#include <cmath>
#include <cstring>

#include "trainer/models/paddle/framework.pb.h"
#include "trainer/models/paddle/paddle_program.h"

namespace slim::models {
namespace proto = paddle::framework::proto;

namespace {

// Bounds-checked little-endian reader over one buffer.
struct Reader {
  const uint8_t* data;
  size_t size;
  size_t& off;
  const std::string& label;
  const std::string& var;

  void need(size_t n, const char* what) const {
    if (n > size - off)
      SLIM_THROW(ModelError, "Paddle params '", label, "': truncated record for '", var,
                 "': need ", n, " bytes for ", what, " at byte offset ", off, ", only ",
                 size - off, " left");
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data + off, sizeof(T));
    off += sizeof(T);
    return v;
  }
};

float halfToFloat(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

}  // namespace

Tensor readPaddleRecord(const void* data, size_t size, size_t& offset,
                        const std::string& label, const std::string& var) {
  if (offset > size)
    SLIM_THROW(ModelError, "Paddle params '", label, "': offset ", offset, " past the end");
  Reader r{static_cast<const uint8_t*>(data), size, offset, label, var};
  const size_t start = offset;
  auto fail = [&](const auto&... parts) {
    SLIM_THROW(ModelError, "Paddle params '", label, "': record for '", var,
               "' (starting at byte ", start, "): ", ::slim::detail::str(parts...));
  };
  uint32_t version = r.get<uint32_t>("the LoDTensor version");
  if (version != 0) fail("LoDTensor version ", version, " (expected file format: 0)");
  uint64_t levels = r.get<uint64_t>("the LoD level count");
  if (levels > 64) fail("implausible LoD level count ", levels);
  for (uint64_t l = 0; l < levels; ++l) {
    uint64_t n = r.get<uint64_t>("a LoD level size");
    r.need(n, "LoD offsets");  // throws when n exceeds what is left
    offset += n;
  }
  uint32_t tversion = r.get<uint32_t>("the tensor version");
  if (tversion != 0) fail("tensor version ", tversion, " (expected 0)");
  int32_t desc_size = r.get<int32_t>("the TensorDesc size");
  if (desc_size < 0) fail("negative TensorDesc size ", desc_size);
  r.need(static_cast<size_t>(desc_size), "the TensorDesc");
  proto::VarType::TensorDesc desc;
  if (!desc.ParseFromArray(r.data + offset, desc_size))
    fail("corrupt TensorDesc protobuf at byte offset ", offset);
  offset += static_cast<size_t>(desc_size);
  if (!desc.has_data_type()) fail("TensorDesc without a (known) data_type");
  const int dt = desc.data_type();
  const size_t esize = detail::podTypeSize(dt);
  if (esize == 0) fail("data type ", detail::varTypeName(dt), " is not a tensor element type");
  Shape dims(desc.dims().begin(), desc.dims().end());
  uint64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0) fail("negative dim in ", shapeStr(dims));
    if (d != 0 && numel > (uint64_t{1} << 40) / static_cast<uint64_t>(d))
      fail("implausibly large dims ", shapeStr(dims));
    numel *= static_cast<uint64_t>(d);
  }
  const size_t nbytes = static_cast<size_t>(numel) * esize;
  r.need(nbytes, "the tensor data");
  const uint8_t* src = r.data + offset;
  offset += nbytes;
  switch (dt) {
    case proto::VarType::FP32: {
      Tensor t(dims, DType::kF32);
      std::memcpy(t.raw(), src, nbytes);
      return t;
    }
    case proto::VarType::FP64: case proto::VarType::FP16: {
      Tensor t(dims, DType::kF32);
      float* out = t.f32();
      for (uint64_t i = 0; i < numel; ++i) {
        if (dt == proto::VarType::FP64) {
          double v;
          std::memcpy(&v, src + i * 8, 8);
          out[i] = static_cast<float>(v);
        } else {
          uint16_t h;
          std::memcpy(&h, src + i * 2, 2);
          out[i] = halfToFloat(h);
        }
      }
      return t;
    }
    case proto::VarType::INT64: case proto::VarType::INT32: case proto::VarType::INT8:
    case proto::VarType::UINT8: {
      DType ty = dt == proto::VarType::INT64   ? DType::kI64
                 : dt == proto::VarType::INT32 ? DType::kI32
                 : dt == proto::VarType::INT8  ? DType::kI8
                                               : DType::kU8;
      Tensor t(dims, ty);
      std::memcpy(t.raw(), src, nbytes);
      return t;
    }
    default:
      fail("unsupported element type ", detail::varTypeName(dt),
           " (supported: FP32, FP64, FP16, INT64, INT32, INT8, UINT8)");
  }
  return {};
}

namespace {

void checkDims(const Tensor& t, const PaddleParamSpec& s, const std::string& label) {
  if (!s.check_dims) return;
  bool ok = t.shape().size() == s.dims.size();
  for (size_t i = 0; ok && i < s.dims.size(); ++i)
    ok = s.dims[i] < 0 || s.dims[i] == t.shape()[i];
  if (!ok)
    SLIM_THROW(ModelError, "Paddle params '", label, "': parameter '", s.name,
               "' has shape ", shapeStr(t.shape()), " but the program declares ",
               shapeStr(s.dims));
}

}  // namespace

std::map<std::string, Tensor> readPaddleCombinedBytes(const void* data, size_t size,
                                                      const std::string& label,
                                                      const std::vector<PaddleParamSpec>& specs) {
  std::map<std::string, Tensor> out;
  size_t off = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (off == size)
      SLIM_THROW(ModelError, "Paddle params '", label, "' ends at byte offset ", off,
                 " after ", i, " records, but the program has ", specs.size(),
                 " persistable tensors (next: '", specs[i].name, "')");
    Tensor t = readPaddleRecord(data, size, off, label, specs[i].name);
    checkDims(t, specs[i], label);
    out[specs[i].name] = std::move(t);
  }
  if (off != size)
    SLIM_THROW(ModelError, "Paddle params '", label, "' has ", size - off,
               " bytes left over at byte offset ", off, " after the ", specs.size(),
               " records the program declares (wrong file, order or set of parameters)");
  return out;
}

std::map<std::string, Tensor> readPaddleCombinedParams(const std::string& path,
                                                       const std::vector<PaddleParamSpec>& specs) {
  std::string bytes = detail::readFileBytes(path, "params");
  return readPaddleCombinedBytes(bytes.data(), bytes.size(), path, specs);
}

std::map<std::string, Tensor> readPaddleSeparateParams(const std::string& dir,
                                                       const std::vector<PaddleParamSpec>& specs) {
  std::map<std::string, Tensor> out;
  for (const auto& s : specs) {
    const std::string path = dir + "/" + s.name;
    std::string bytes = detail::readFileBytes(path, "parameter");
    size_t off = 0;
    Tensor t = readPaddleRecord(bytes.data(), bytes.size(), off, path, s.name);
    if (off != bytes.size())
      SLIM_THROW(ModelError, "Paddle parameter file '", path, "' has ", bytes.size() - off,
                 " bytes left over at byte offset ", off, " after its one record");
    checkDims(t, s, path);
    out[s.name] = std::move(t);
  }
  return out;
}

}  // namespace slim::models
