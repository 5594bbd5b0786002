// Model loading dispatch by name, extension and folder contents.
#include "trainer/models/load.h"

#include <filesystem>
#include <map>
#include <new>

#include "trainer/graph/executor.h"

#include "trainer/models/onnx/onnx_import.h"
#include "trainer/models/paddle/paddle_import.h"
#include "trainer/models/zoo.h"

namespace slim::models {
namespace fs = std::filesystem;

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

graph::Graph loadPaddle(const fs::path& model, const std::string& params) {
  if (!params.empty()) return importPaddle(model.string(), params);
  fs::path sibling = model;
  sibling.replace_extension(".pdiparams");
  if (endsWith(model.string(), ".pdmodel") && fs::exists(sibling))
    return importPaddle(model.string(), sibling.string());
  return importPaddle(model.string(), "");  // separate params in the folder
}

}  // namespace

graph::Graph loadModel(const std::string& path, const std::string& params_path, uint64_t seed) {
  if (path.rfind("zoo:", 0) == 0) return buildZooModel(path, seed);
  fs::path p(path);
  if (!fs::exists(p)) SLIM_THROW(ModelError, "model '", path, "' does not exist");
  if (fs::is_directory(p)) {
    for (const char* name : {"model.onnx", "model.pdmodel", "inference.pdmodel", "__model__"}) {
      if (fs::exists(p / name)) return loadModel((p / name).string(), params_path, seed);
    }
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(p)) {
      std::string n = e.path().filename().string();
      if (endsWith(n, ".onnx") || endsWith(n, ".pdmodel")) found.push_back(e.path());
    }
    if (found.size() == 1) return loadModel(found[0].string(), params_path, seed);
    SLIM_THROW(ModelError, "folder '", path, "' holds ", found.size(),
               " candidate model files (.onnx/.pdmodel/__model__); name one with "
               "Global.model_filename");
  }
  if (endsWith(path, ".onnx")) return importOnnx(path);
  if (endsWith(path, ".pdmodel") || p.filename() == "__model__") return loadPaddle(p, params_path);
  SLIM_THROW(ModelError, "model '", path,
             "': unknown format (expected .onnx, .pdmodel, __model__ or zoo:<name>)");
}

void checkModelRuns(const graph::Graph& g, const std::string& label) {
  if (g.outputs.empty())
    SLIM_THROW(ModelError, "model '", label, "' has no outputs: nothing to compute");
  std::map<std::string, Tensor> feeds;
  for (const auto& in : g.inputs) {
    Shape s = in.shape;
    for (size_t i = 1; i < s.size(); ++i)
      if (s[i] <= 0) return;  // a dynamic dimension: no probe
    if (!s.empty() && s[0] <= 0) s[0] = 1;
    feeds[in.name] = Tensor(s, in.dtype);
  }
  std::string why;
  try {
    graph::Graph run = g;
    graph::Executor ex(run);
    ops::RunContext ctx;
    ex.forward(feeds, ctx);
    return;
  } catch (const std::bad_alloc&) {
    why = "a tensor of implausible size (more memory than this machine has)";
  } catch (const std::exception& e) {
    why = e.what();
  }
  SLIM_THROW(ModelError, "model '", label, "' cannot run on its declared input shapes: ", why);
}

graph::Graph loadModelFrom(const std::string& dir, const std::string& model_filename,
                           const std::string& params_filename, uint64_t seed) {
  fs::path base = dir.empty() ? fs::path(".") : fs::path(dir);
  std::string model = model_filename.empty() ? base.string() : (base / model_filename).string();
  std::string params = params_filename.empty() ? "" : (base / params_filename).string();
  return loadModel(model, params, seed);
}

}  // namespace slim::models
