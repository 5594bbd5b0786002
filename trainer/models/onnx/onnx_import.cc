// ONNX importer: protobuf -> Graph. Parsing and naming live here; opset
// normalisation, constant folding and parameter classification are in
// onnx_normalize.cc and onnx_fold.cc. Every failure becomes a ModelError that
// starts with the file name.
#include "trainer/models/onnx/onnx_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <onnx/defs/schema.h>

#include "trainer/models/onnx/onnx_convert.h"
#include "trainer/models/onnx/onnx_import_detail.h"
#include "trainer/models/onnx/wire_scan.h"
#include "trainer/ops/op.h"

namespace slim::models {
namespace {

using detail::IntPolicy;

bool isDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

class Importer {
 public:
  explicit Importer(const onnx::ModelProto& m) : m_(m) {}

  graph::Graph run() {
    readOpsets();
    const onnx::GraphProto& gp = m_.graph();
    g_.name = gp.name().empty() ? "graph" : gp.name();
    if (gp.sparse_initializer_size() > 0)
      SLIM_THROW(ModelError, "sparse initializers ('", gp.sparse_initializer(0).values().name(),
                 "') are not supported");
    for (const auto& t : gp.initializer())
      g_.addInitializer(t.name(), detail::tensorFromProto(
                                      t, IntPolicy::kWiden, "initializer '" + t.name() + "'"));
    for (const auto& v : gp.input())
      if (!g_.isInitializer(v.name())) g_.inputs.push_back(valueInfo(v, true));
    for (const auto& v : gp.output()) g_.outputs.push_back(valueInfo(v, false));
    if (forced_batch_ > 0)  // outputs that carried the same static batch follow it
      for (auto& o : g_.outputs)
        if (!o.shape.empty() && o.shape[0] == forced_batch_) o.shape[0] = -1;
    for (int i = 0; i < gp.node_size(); ++i) addNode(gp.node(i), i);
    g_.topoSort();
    for (auto& n : g_.nodes) detail::normalizeNode(g_, n, opset_);
    detail::foldConstants(g_);
    detail::classifyInitializers(g_);
    g_.validate();
    for (const auto& n : g_.nodes) ops::OpRegistry::get().create(n.op_type, n.attrs, n.name);
    return std::move(g_);
  }

 private:
  void readOpsets() {
    for (const auto& o : m_.opset_import()) {
      domains_[o.domain().empty() ? "ai.onnx" : o.domain()] = o.version();
      if (isDefaultDomain(o.domain())) opset_ = static_cast<int>(o.version());
    }
    if (opset_ == 0)
      SLIM_THROW(ModelError, "the model declares no opset for the ONNX default domain");
    if (opset_ < detail::kMinOpset || opset_ > detail::kMaxOpset)
      SLIM_THROW(ModelError, "unsupported opset ", opset_, " of the ONNX default domain "
                 "(supported: ", detail::kMinOpset, "-", detail::kMaxOpset, ")");
  }

  graph::ValueInfo valueInfo(const onnx::ValueInfoProto& v, bool is_input) {
    const char* kind = is_input ? "input" : "output";
    graph::ValueInfo vi;
    vi.name = v.name();
    if (!v.type().has_tensor_type())
      SLIM_THROW(ModelError, kind, " '", v.name(), "' is not a tensor (sequence, map and "
                 "optional types are not supported)");
    const auto& tt = v.type().tensor_type();
    if (tt.elem_type() == onnx::TensorProto::DOUBLE)
      SLIM_THROW(ModelError, kind, " '", v.name(), "': unsupported element type DOUBLE");
    vi.dtype = detail::dtypeFromElemType(tt.elem_type(), IntPolicy::kKeep,
                                         std::string(kind) + " '" + v.name() + "'");
    if (!tt.has_shape()) {
      if (is_input)
        SLIM_THROW(ModelError, "input '", v.name(), "' has no shape (unknown rank is not "
                   "supported)");
      return vi;  // output of unknown shape
    }
    for (const auto& d : tt.shape().dim())
      vi.shape.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
    if (is_input && vi.shape.size() == 4 && vi.shape[0] != -1) {
      forced_batch_ = vi.shape[0];  // image batches are always dynamic
      vi.shape[0] = -1;
    }
    return vi;
  }

  std::string nodeName(const onnx::NodeProto& np, int index) {
    std::string base = np.name().empty() ? np.op_type() + "_" + std::to_string(index)
                                         : np.name();
    std::string name = base;
    for (int k = 1; node_names_.count(name); ++k) name = base + "_" + std::to_string(k);
    node_names_.insert(name);
    return name;
  }

  void addNode(const onnx::NodeProto& np, int index) {
    graph::Node n;
    n.name = nodeName(np, index);
    n.op_type = np.op_type();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    const std::string domain = np.domain().empty() ? "ai.onnx" : np.domain();
    if (!isDefaultDomain(np.domain()) || !ops::OpRegistry::get().isModelOp(n.op_type)) {
      auto it = domains_.find(domain);
      SLIM_THROW(ModelError, "node '", n.name, "': unsupported op type '", n.op_type,
                 "' (ONNX domain ", domain, ", opset ",
                 it == domains_.end() ? std::string("?") : std::to_string(it->second), ")");
    }
    checkArity(n);
    for (const auto& a : np.attribute()) n.attrs.set(a.name(), detail::attrFromProto(a, n.name));
    if (n.op_type == "Constant") {
      addConstant(n);
      return;
    }
    g_.nodes.push_back(std::move(n));
  }

  // Input/output counts against the ONNX schema of the model's opset, and no
  // omitted ("") required input: kernels index their inputs by position.
  void checkArity(const graph::Node& n) const {
    const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(n.op_type, opset_, "");
    if (!s) return;  // no ONNX schema at this opset: the kernel checks
    const int nin = static_cast<int>(n.inputs.size());
    const int nout = static_cast<int>(n.outputs.size());
    if (nin < s->min_input() || nin > s->max_input())
      SLIM_THROW(ModelError, "node '", n.name, "': ", n.op_type, " (opset ", opset_,
                 ") takes ", s->min_input(), " to ", s->max_input(), " inputs, got ", nin);
    if (nout < s->min_output() || nout > s->max_output())
      SLIM_THROW(ModelError, "node '", n.name, "': ", n.op_type, " (opset ", opset_,
                 ") has ", s->min_output(), " to ", s->max_output(), " outputs, got ", nout);
    const auto& formal = s->inputs();
    for (int i = 0; i < nin && !formal.empty(); ++i) {
      const auto& f = formal[std::min<size_t>(i, formal.size() - 1)];
      if (n.inputs[i].empty() && f.GetOption() != onnx::OpSchema::Optional)
        SLIM_THROW(ModelError, "node '", n.name, "': required input ", i, " ('",
                   f.GetName(), "') of ", n.op_type, " is empty");
    }
  }

  // Constant nodes become initializers directly (whatever attribute holds the value).
  void addConstant(const graph::Node& n) {
    SLIM_ENFORCE(n.outputs.size() == 1, "node '", n.name, "': Constant needs one output");
    const ops::Attrs& a = n.attrs;
    Tensor t;
    if (a.has("value")) {
      t = a.getTensor("value");
    } else if (a.has("value_float")) {
      t = Tensor::scalar(a.getFloat("value_float"));
    } else if (a.has("value_floats")) {
      auto v = a.getFloats("value_floats", {});
      t = Tensor::fromVector({static_cast<int64_t>(v.size())}, v);
    } else if (a.has("value_int")) {
      t = Tensor::fromInts({}, {a.getInt("value_int")});
    } else if (a.has("value_ints")) {
      auto v = a.getInts("value_ints");
      t = Tensor::fromInts({static_cast<int64_t>(v.size())}, v);
    } else {
      SLIM_THROW(ModelError, "node '", n.name, "': Constant with ",
                 a.all().empty() ? std::string("no value") : "attribute '" + a.all().begin()->first + "'",
                 " is not supported");
    }
    g_.addInitializer(n.outputs[0], t);
  }

  const onnx::ModelProto& m_;
  graph::Graph g_;
  int opset_ = 0;
  int64_t forced_batch_ = 0;
  std::map<std::string, int64_t> domains_;
  std::set<std::string> node_names_;
};

}  // namespace

graph::Graph importOnnx(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    SLIM_THROW(ModelError, "ONNX model '", path, "' is a folder, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) SLIM_THROW(ModelError, "cannot open ONNX model '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return importOnnxBytes(ss.str(), path);
}

graph::Graph importOnnxBytes(const std::string& bytes, const std::string& label) {
  try {
    onnx::ModelProto m;
    if (!m.ParseFromString(bytes)) {
      // Name the damaged field and its byte offset (protobuf only says "failed").
      const WireFault f = findWireFault(bytes, onnx::ModelProto::descriptor());
      if (f.offset >= 0)
        SLIM_THROW(ModelError, "not a valid ONNX model: ", describeWireFault(f, bytes.size()));
      SLIM_THROW(ModelError, "not a valid ONNX model (protobuf rejected it; every field is "
                 "well-formed at the wire level, so a value inside one is invalid)");
    }
    if (!m.has_graph() || m.graph().node_size() == 0)
      SLIM_THROW(ModelError, "no graph or an empty graph (truncated, or not an ONNX model)");
    return Importer(m).run();
  } catch (const std::exception& e) {
    SLIM_THROW(ModelError, "ONNX model '", label, "' (", bytes.size(), " bytes): ", e.what());
  }
}

}  // namespace slim::models
