// Candidate selection for unstructured pruning: ACT's _get_skip_params and
// _get_skip_params_conv1x1 (act-reference §3.1) over ONNX-named graphs.
#include "trainer/compress/prune/candidates.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "trainer/core/error.h"

namespace slim::compress {
namespace {

constexpr const char* kTeacherPrefixP = "teacher_";

bool isNormOp(const std::string& op_type) {
  std::string low(op_type);
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return low.find("norm") != std::string::npos;
}

}  // namespace

std::vector<std::string> prunableParams(const graph::Graph& g,
                                        const config::UnstructurePrune& cfg) {
  const std::string& type = cfg.prune_params_type;
  if (!type.empty() && type != "conv1x1_only")
    SLIM_THROW(ConfigError, "UnstructurePrune.prune_params_type: expected null or "
               "'conv1x1_only', found '", type, "'");
  const bool conv1x1 = type == "conv1x1_only";

  // Every input of a *norm* op is skipped (scale, bias, mean, variance).
  std::set<std::string> norm_inputs;
  for (const graph::Node& n : g.nodes)
    if (isNormOp(n.op_type))
      for (const std::string& in : n.inputs) norm_inputs.insert(in);

  std::vector<std::string> out;
  for (const std::string& name : g.trainable) {  // std::set: already sorted
    auto it = g.initializers.find(name);
    if (it == g.initializers.end()) continue;
    const Tensor& w = it->second;
    if (w.dtype() != DType::kF32) continue;
    if (name.rfind(kTeacherPrefixP, 0) == 0) continue;
    if (norm_inputs.count(name)) continue;
    if (w.ndim() < 2) continue;
    if (conv1x1 && !(w.ndim() == 4 && w.dim(2) == 1 && w.dim(3) == 1)) continue;
    out.push_back(name);
  }
  return out;
}

}  // namespace slim::compress
