// One forward pass of an imported ONNX model on .pb inputs.
#include "trainer/models/onnx/onnx_infer.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>

#include "trainer/graph/executor.h"
#include "trainer/models/load.h"
#include "trainer/models/onnx/tensor_proto.h"

namespace slim::models {
namespace {

// Converts between the integer dtypes the graph may declare.
Tensor toDType(const Tensor& t, DType want, const std::string& what) {
  if (t.dtype() == want) return t;
  Tensor out(t.shape(), want);
  auto load = [&](int64_t i) -> int64_t {
    switch (t.dtype()) {
      case DType::kI64: return t.data<int64_t>()[i];
      case DType::kI32: return t.data<int32_t>()[i];
      case DType::kU8: return t.data<uint8_t>()[i];
      case DType::kI8: return t.data<int8_t>()[i];
      default: SLIM_THROW(ShapeError, what, ": ", dtypeName(t.dtype()),
                          " cannot feed a ", dtypeName(want), " input");
    }
  };
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (want) {
      case DType::kI64: out.data<int64_t>()[i] = load(i); break;
      case DType::kI32: out.data<int32_t>()[i] = static_cast<int32_t>(load(i)); break;
      default: SLIM_THROW(ShapeError, what, ": ", dtypeName(t.dtype()),
                          " cannot feed a ", dtypeName(want), " input");
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> runOnnxInfer(const std::string& model_path,
                                      const std::vector<std::string>& input_pb_paths,
                                      const std::string& output_dir) {
  graph::Graph g = loadModel(model_path);
  if (g.outputs.empty())
    SLIM_THROW(ModelError, "model '", model_path, "' has no outputs: nothing to compute or write");
  if (input_pb_paths.size() != g.inputs.size())
    SLIM_THROW(ConfigError, "model '", model_path, "' has ", g.inputs.size(),
               " inputs, got ", input_pb_paths.size(), " input files");
  std::vector<Tensor> tensors;
  std::vector<std::string> names;
  for (const auto& p : input_pb_paths) {
    names.emplace_back();
    tensors.push_back(readTensorProto(p, &names.back()));
  }
  bool by_name = true;
  for (const auto& n : names)
    if (!g.isInput(n)) by_name = false;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const graph::ValueInfo& in =
        by_name ? *std::find_if(g.inputs.begin(), g.inputs.end(),
                                [&](const graph::ValueInfo& v) { return v.name == names[i]; })
                : g.inputs[i];
    feeds[in.name] = toDType(tensors[i], in.dtype, "input file '" + input_pb_paths[i] + "'");
  }
  // A model that imports but cannot run (a kernel_shape or group that does
  // not fit its weights, a Reshape to an impossible size) is the model's
  // fault, like one that does not parse: exit 2 naming the file.
  std::unique_ptr<graph::Executor> ex;
  try {
    ex = std::make_unique<graph::Executor>(g);
    ops::RunContext ctx;
    ex->forward(feeds, ctx);
  } catch (const ModelError&) {
    throw;
  } catch (const std::bad_alloc&) {
    SLIM_THROW(ModelError, "model '", model_path, "' asks for more memory than this machine "
               "has (a tensor of implausible size; damaged shapes?)");
  } catch (const std::length_error& e) {
    SLIM_THROW(ModelError, "model '", model_path, "' asks for a tensor too large to allocate ("
               , e.what(), ")");
  } catch (const Error& e) {
    if (dynamic_cast<const ConfigError*>(&e) || dynamic_cast<const DataError*>(&e)) throw;
    SLIM_THROW(ModelError, "model '", model_path, "' cannot run on these inputs: ", e.what());
  }
  std::vector<std::string> written;
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec)
    SLIM_THROW(ConfigError, "--output-dir ", output_dir, ": cannot create the folder: ",
               ec.message());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    std::string path = output_dir + "/output_" + std::to_string(i) + ".pb";
    writeTensorProto(ex->value(g.outputs[i].name), path, g.outputs[i].name);
    written.push_back(path);
  }
  return written;
}

}  // namespace slim::models
