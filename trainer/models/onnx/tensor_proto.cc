// TensorProto file reading and writing on top of onnx_convert.
#include "trainer/models/onnx/tensor_proto.h"

#include <fstream>
#include <sstream>

#include "trainer/models/onnx/onnx_convert.h"
#include "trainer/models/onnx/wire_scan.h"

namespace slim::models {

Tensor readTensorProto(const std::string& path, std::string* name) {
  std::ifstream f(path, std::ios::binary);
  if (!f) SLIM_THROW(ModelError, "cannot open tensor file '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  onnx::TensorProto p;
  if (!p.ParseFromString(bytes))
    SLIM_THROW(ModelError, "'", path, "' (", bytes.size(),
               " bytes) is not a valid TensorProto (truncated or corrupt): ",
               describeWireFault(findWireFault(bytes, onnx::TensorProto::descriptor()),
                                 bytes.size()));
  if (name) *name = p.name();
  try {
    return detail::tensorFromProto(p, detail::IntPolicy::kKeep,
                                   "tensor file '" + path + "'");
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    SLIM_THROW(ModelError, "tensor file '", path, "': ", e.what());
  }
}

void writeTensorProto(const Tensor& t, const std::string& path, const std::string& name) {
  onnx::TensorProto p;
  detail::tensorToProto(t, name, &p);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f || !p.SerializeToOstream(&f) || !f.flush())
    SLIM_THROW(ModelError, "cannot write tensor file '", path, "'");
}

}  // namespace slim::models
