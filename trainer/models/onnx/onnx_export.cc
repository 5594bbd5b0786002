// ONNX exporter: Graph -> ModelProto. Nodes are written as they are except
// for slimtrain-only attributes (coerce_2d, slim_*); the model is validated with
// ONNX's own checker and strict shape inference before it is written.
#include "trainer/models/onnx/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "trainer/models/onnx/onnx_convert.h"

namespace slim::models {
namespace {

constexpr int kMinExportOpset = 13;
constexpr int kMaxExportOpset = 17;

// Attributes older opsets lack; dropped when they hold their neutral value.
bool neutralExtraAttr(const graph::Node& n, const std::string& name) {
  if (name == "training_mode" || name == "allowzero" || name == "start")
    return n.attrs.getInt(name, 0) == 0;
  return false;
}

void writeValueInfo(const graph::ValueInfo& v, onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(detail::elemTypeFromDType(v.dtype));
  if (v.shape.empty()) return;  // unknown (or scalar output): leave it to inference
  auto* shape = tt->mutable_shape();
  for (size_t d = 0; d < v.shape.size(); ++d) {
    auto* dim = shape->add_dim();
    if (v.shape[d] >= 0)
      dim->set_dim_value(v.shape[d]);
    else
      dim->set_dim_param(d == 0 ? "N" : v.name + "_dim" + std::to_string(d));
  }
}

class Exporter {
 public:
  Exporter(const graph::Graph& g, int opset) : g_(g), opset_(opset) {
    g_.topoSort();
    used_ = g_.tensorNames();
    for (const auto& n : g_.nodes) used_.insert(n.name);
  }

  onnx::ModelProto build() {
    onnx::ModelProto m;
    m.set_ir_version(opset_ <= 14 ? 7 : 8);
    m.set_producer_name("slimtrain");
    m.set_producer_version("0.1.0");
    auto* os = m.add_opset_import();
    os->set_domain("");
    os->set_version(opset_);
    onnx::GraphProto* gp = m.mutable_graph();
    gp->set_name(g_.name);
    for (const auto& v : g_.inputs) writeValueInfo(v, gp->add_input());
    for (const auto& v : g_.outputs) writeValueInfo(v, gp->add_output());
    for (const auto& kv : g_.initializers)
      detail::tensorToProto(kv.second, kv.first, gp->add_initializer());
    for (const auto& n : g_.nodes) writeNode(n, gp);
    return m;
  }

 private:
  std::string fresh(const std::string& base) {
    std::string s = base;
    for (int k = 1; used_.count(s); ++k) s = base + "_" + std::to_string(k);
    used_.insert(s);
    return s;
  }

  onnx::NodeProto* addNode(onnx::GraphProto* gp, const std::string& name,
                           const std::string& type, std::vector<std::string> in,
                           std::vector<std::string> out) {
    onnx::NodeProto* p = gp->add_node();
    p->set_name(name);
    p->set_op_type(type);
    for (const auto& s : in) p->add_input(s);
    for (const auto& s : out) p->add_output(s);
    return p;
  }

  void writeNode(const graph::Node& n, onnx::GraphProto* gp) {
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Schema(n.op_type, opset_, onnx::ONNX_DOMAIN);
    if (!schema)
      SLIM_THROW(ModelError, "node '", n.name, "': op type '", n.op_type,
                 "' is not an ONNX default-domain op at opset ", opset_,
                 " (slimtrain-specific ops cannot be exported yet)");
    const bool coerce = n.attrs.getInt("coerce_2d", 0) != 0;
    const int64_t axis = n.attrs.getInt("axis", coerce ? 1 : -1);
    if (coerce && axis != -1) {
      writeCoerced(n, axis, gp);
      return;
    }
    onnx::NodeProto* p = addNode(gp, n.name, n.op_type, n.inputs, n.outputs);
    for (const auto& [name, value] : n.attrs.all()) {
      // slimtrain-only: coerce_2d is written out below; slim_* attributes
      // change training behaviour only (slim_frozen, slim_renorm).
      if (name == "coerce_2d" || name.rfind("slim_", 0) == 0) continue;
      if (!schema->attributes().count(name)) {
        if (neutralExtraAttr(n, name)) continue;
        SLIM_THROW(ModelError, "node '", n.name, "' (", n.op_type, "): attribute '", name,
                   "' has no ONNX opset-", opset_, " equivalent");
      }
      detail::attrToProto(name, value, p->add_attribute());
    }
  }

  // Opset < 13 Softmax semantics: flatten to 2-D at `axis`, normalise rows,
  // restore the shape.
  void writeCoerced(const graph::Node& n, int64_t axis, onnx::GraphProto* gp) {
    SLIM_ENFORCE(n.inputs.size() == 1 && n.outputs.size() == 1, "node '", n.name,
                 "': expected one input and one output");
    const std::string shape = fresh(n.name + "_shape"), flat = fresh(n.name + "_flat"),
                      y2 = fresh(n.name + "_2d");
    addNode(gp, fresh(n.name + "_Shape"), "Shape", {n.inputs[0]}, {shape});
    auto* f = addNode(gp, fresh(n.name + "_Flatten"), "Flatten", {n.inputs[0]}, {flat});
    detail::attrToProto("axis", axis, f->add_attribute());
    auto* s = addNode(gp, n.name, n.op_type, {flat}, {y2});
    detail::attrToProto("axis", int64_t{1}, s->add_attribute());
    addNode(gp, fresh(n.name + "_Reshape"), "Reshape", {y2, shape}, {n.outputs[0]});
  }

  graph::Graph g_;
  int opset_;
  std::set<std::string> used_;
};

}  // namespace

void exportOnnx(const graph::Graph& g, const std::string& path, int opset) {
  if (opset < kMinExportOpset || opset > kMaxExportOpset)
    SLIM_THROW(ModelError, "export to '", path, "': opset ", opset,
               " is not supported (", kMinExportOpset, "-", kMaxExportOpset, ")");
  onnx::ModelProto m = Exporter(g, opset).build();
  try {
    onnx::checker::check_model(m);
    onnx::ModelProto inferred = m;  // strict inference, like check_model(full_check=True)
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    SLIM_THROW(ModelError, "export to '", path, "': the model fails ONNX's checker: ",
               e.what());
  }
  // A write failure is the machine's (disk full, a folder in the way), not
  // the model's: a runtime error (exit 1) with the system's reason.
  errno = 0;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f || !m.SerializeToOstream(&f) || !f.flush())
    SLIM_THROW(Error, "export: cannot write '", path, "': ",
               errno != 0 ? std::strerror(errno) : "write failed");
}

}  // namespace slim::models
