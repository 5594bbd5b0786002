// importPaddle: parse the program, collect the persistable tensors (sorted by
// name, the params file order), load or synthesise them, then convert block 0.
#include "trainer/models/paddle/paddle_import.h"

#include "trainer/models/paddle/framework.pb.h"
#include "trainer/models/paddle/paddle_convert.h"
#include "trainer/models/paddle/paddle_params.h"
#include "trainer/models/paddle/paddle_program.h"

namespace slim::models {
namespace proto = paddle::framework::proto;

namespace {

std::vector<PaddleParamSpec> paramSpecs(const proto::ProgramDesc& prog) {
  std::map<std::string, const proto::VarDesc*> vars;
  for (const auto& v : prog.blocks(0).vars()) vars[v.name()] = &v;
  std::vector<PaddleParamSpec> specs;
  for (const auto& name : detail::paramNames(prog)) {
    PaddleParamSpec s;
    s.name = name;
    const auto& t = vars.at(name)->type();
    if (t.type() == proto::VarType::SELECTED_ROWS || t.type() == proto::VarType::VOCAB)
      SLIM_THROW(ModelError, "persistable variable '", name, "' has type ",
                 proto::VarType::Type_Name(t.type()), " (only dense tensors are supported)");
    s.check_dims = t.has_lod_tensor() && t.lod_tensor().has_tensor();
    if (s.check_dims)
      s.dims.assign(t.lod_tensor().tensor().dims().begin(), t.lod_tensor().tensor().dims().end());
    specs.push_back(std::move(s));
  }
  return specs;
}

// Program-only mode: zero tensors of the declared dims and element type.
std::map<std::string, Tensor> syntheticParams(const proto::ProgramDesc& prog,
                                              const std::vector<PaddleParamSpec>& specs,
                                              const std::string& label) {
  std::map<std::string, const proto::VarDesc*> vars;
  for (const auto& v : prog.blocks(0).vars()) vars[v.name()] = &v;
  // Declared dims are untrusted: cap what program-only mode will allocate.
  constexpr int64_t kMaxElems = int64_t{1} << 28;
  int64_t total = 0;
  std::map<std::string, Tensor> out;
  for (const auto& s : specs) {
    if (!s.check_dims)
      SLIM_THROW(ModelError, label, ": program-only import: parameter '", s.name,
                 "' declares no dims");
    for (int64_t d : s.dims)
      if (d < 0)
        SLIM_THROW(ModelError, label, ": program-only import: parameter '", s.name,
                   "' has unknown dims ", shapeStr(s.dims));
    int64_t numel = 1;
    for (int64_t d : s.dims) {
      if (d != 0 && numel > kMaxElems / d) numel = kMaxElems + 1;
      else numel *= d;
    }
    total += numel;
    if (numel > kMaxElems || total > 2 * kMaxElems)
      SLIM_THROW(ModelError, label, ": program-only import: parameter '", s.name, "' dims ",
                 shapeStr(s.dims), " exceed the ", kMaxElems, "-element limit of synthetic params");
    int dt = vars.at(s.name)->type().lod_tensor().tensor().data_type();
    DType ty = dt == proto::VarType::INT64 || dt == proto::VarType::INT32 ? DType::kI64
                                                                          : DType::kF32;
    out[s.name] = Tensor(s.dims, ty);
  }
  return out;
}

std::string dirOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

graph::Graph convert(const proto::ProgramDesc& prog, std::map<std::string, Tensor> params,
                     const std::string& label, bool program_only) {
  detail::PaddleConverter conv(prog, std::move(params), label, program_only);
  graph::Graph g = conv.run();
  g.name = label;
  return g;
}

}  // namespace

graph::Graph importPaddle(const std::string& model_path, const std::string& params_path,
                          const PaddleImportOptions& opts) {
  if (model_path.size() >= 5 && model_path.compare(model_path.size() - 5, 5, ".json") == 0)
    SLIM_THROW(ModelError, "'", model_path, "' is a Paddle 3.x PIR program (.json); only "
               "protobuf ProgramDesc (.pdmodel / __model__) is supported");
  std::string bytes = detail::readFileBytes(model_path, "program");
  proto::ProgramDesc prog;
  detail::parseProgramDesc(bytes.data(), bytes.size(), model_path, prog);
  auto specs = paramSpecs(prog);
  std::map<std::string, Tensor> params;
  if (opts.program_only) params = syntheticParams(prog, specs, model_path);
  else if (params_path.empty()) params = readPaddleSeparateParams(dirOf(model_path), specs);
  else params = readPaddleCombinedParams(params_path, specs);
  return convert(prog, std::move(params), model_path, opts.program_only);
}

graph::Graph importPaddleDir(const std::string& dir, const std::string& model_filename,
                             const std::string& params_filename,
                             const PaddleImportOptions& opts) {
  return importPaddle(dir + "/" + model_filename,
                      params_filename.empty() ? "" : dir + "/" + params_filename, opts);
}

graph::Graph importPaddleBytes(const std::string& model_bytes, const std::string& params_bytes,
                               const std::string& label, const PaddleImportOptions& opts) {
  proto::ProgramDesc prog;
  detail::parseProgramDesc(model_bytes.data(), model_bytes.size(), label, prog);
  auto specs = paramSpecs(prog);
  auto params = opts.program_only
                    ? syntheticParams(prog, specs, label)
                    : readPaddleCombinedBytes(params_bytes.data(), params_bytes.size(),
                                              label + " (params)", specs);
  return convert(prog, std::move(params), label, opts.program_only);
}

}  // namespace slim::models
