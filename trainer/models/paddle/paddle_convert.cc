// The block-0 walk: feed ops become graph inputs, fetch ops graph outputs,
// every other op goes through its converter; errors are re-thrown naming the
// Paddle op type, its index in block 0 and its first output.
#include "trainer/models/paddle/paddle_convert.h"

#include <algorithm>

namespace slim::models::detail {

// ---------------------------------------------------------------- OpView

std::vector<std::string> OpView::inputs(const std::string& slot) const {
  for (const auto& v : op_.inputs())
    if (v.parameter() == slot) return {v.arguments().begin(), v.arguments().end()};
  return {};
}

std::vector<std::string> OpView::outputs(const std::string& slot) const {
  for (const auto& v : op_.outputs())
    if (v.parameter() == slot) return {v.arguments().begin(), v.arguments().end()};
  return {};
}

std::string OpView::in(const std::string& slot) const {
  auto v = inputs(slot);
  if (v.size() != 1)
    SLIM_THROW(ModelError, "input slot '", slot, "' must hold exactly one variable, has ",
               v.size());
  return v[0];
}

std::string OpView::out(const std::string& slot) const {
  auto v = outputs(slot);
  if (v.size() != 1)
    SLIM_THROW(ModelError, "output slot '", slot, "' must hold exactly one variable, has ",
               v.size());
  return v[0];
}

std::string OpView::optIn(const std::string& slot) const {
  auto v = inputs(slot);
  if (v.size() > 1)
    SLIM_THROW(ModelError, "input slot '", slot, "' holds ", v.size(), " variables, want 0 or 1");
  return v.empty() ? "" : v[0];
}

std::string OpView::firstOutput() const {
  for (const auto& v : op_.outputs())
    if (v.arguments_size() > 0) return v.arguments(0);
  return "";
}

const proto::OpDesc::Attr* OpView::find(const std::string& name) const {
  for (const auto& a : op_.attrs())
    if (a.name() == name) return &a;
  return nullptr;
}

namespace {
[[noreturn]] void badAttr(const proto::OpDesc::Attr& a, const char* want) {
  SLIM_THROW(ModelError, "attribute '", a.name(), "' has type ",
             a.has_type() ? proto::AttrType_Name(a.type()) : std::string("UNKNOWN"),
             ", expected ", want);
}
}  // namespace

int64_t OpView::i(const std::string& name, int64_t dflt) const {
  const auto* a = find(name);
  if (!a) return dflt;
  switch (a->type()) {
    case proto::INT: return a->i();
    case proto::LONG: return a->l();
    case proto::BOOLEAN: return a->b() ? 1 : 0;
    default: badAttr(*a, "INT or LONG");
  }
}

float OpView::f(const std::string& name, float dflt) const {
  const auto* a = find(name);
  if (!a) return dflt;
  switch (a->type()) {
    case proto::FLOAT: return a->f();
    case proto::FLOAT64: return static_cast<float>(a->float64());
    case proto::INT: return static_cast<float>(a->i());
    case proto::LONG: return static_cast<float>(a->l());
    default: badAttr(*a, "FLOAT");
  }
}

bool OpView::b(const std::string& name, bool dflt) const {
  const auto* a = find(name);
  if (!a) return dflt;
  switch (a->type()) {
    case proto::BOOLEAN: return a->b();
    case proto::INT: return a->i() != 0;  // old programs write is_test as INT
    case proto::LONG: return a->l() != 0;
    default: badAttr(*a, "BOOLEAN");
  }
}

std::string OpView::s(const std::string& name, const std::string& dflt) const {
  const auto* a = find(name);
  if (!a) return dflt;
  if (a->type() != proto::STRING) badAttr(*a, "STRING");
  return a->s();
}

std::vector<int64_t> OpView::ints(const std::string& name,
                                  const std::vector<int64_t>& dflt) const {
  const auto* a = find(name);
  if (!a) return dflt;
  switch (a->type()) {
    case proto::INTS: return {a->ints().begin(), a->ints().end()};
    case proto::LONGS: return {a->longs().begin(), a->longs().end()};
    case proto::INT: return {a->i()};
    default: badAttr(*a, "INTS or LONGS");
  }
}

// ---------------------------------------------------------- PaddleConverter

PaddleConverter::PaddleConverter(const proto::ProgramDesc& prog,
                                 std::map<std::string, Tensor> params, std::string label,
                                 bool program_only)
    : block_(prog.blocks(0)), label_(std::move(label)), program_only_(program_only) {
  for (const auto& v : block_.vars()) vars_[v.name()] = &v;
  for (const auto& op : block_.ops())
    for (const auto& in : op.inputs())
      for (const auto& a : in.arguments()) consumers_[a]++;
  for (auto& [name, t] : params) {
    const bool flt = t.dtype() == DType::kF32;
    g_.addInitializer(name, std::move(t), flt);
    defined_.insert(name);
  }
}

const proto::VarDesc* PaddleConverter::varDesc(const std::string& name) const {
  auto it = vars_.find(name);
  if (it == vars_.end()) {
    auto o = origin_.find(name);
    if (o != origin_.end()) it = vars_.find(o->second);
  }
  return it == vars_.end() ? nullptr : it->second;
}

std::string PaddleConverter::input(const std::string& var) const {
  auto it = rename_.find(var);
  return it == rename_.end() ? var : it->second;
}

std::string PaddleConverter::output(const std::string& var) {
  std::string name = var;
  if (defined_.count(name)) {
    name = tmp(var);
    rename_[var] = name;
    origin_[name] = var;
  }
  defined_.insert(name);
  return name;
}

void PaddleConverter::alias(const std::string& alias, const std::string& target) {
  if (alias != target) rename_[alias] = input(target);
}

std::string PaddleConverter::tmp(const std::string& base) {
  std::string name = base;
  for (int k = 1; defined_.count(name) || vars_.count(name); ++k)
    name = base + "." + std::to_string(k);
  defined_.insert(name);
  return name;
}

std::string PaddleConverter::constant(const std::string& base, Tensor t) {
  std::string name = tmp(base);
  g_.addInitializer(name, std::move(t));
  return name;
}

std::string PaddleConverter::scalar(const std::string& base, float v) {
  return constant(base, Tensor::scalar(v));
}

void PaddleConverter::node(const std::string& type, std::vector<std::string> ins,
                           std::vector<std::string> outs, ops::Attrs attrs) {
  graph::Node n;
  // append() rather than operator+: GCC 12 warns falsely (-Wrestrict) on the latter.
  n.name.append(cur_->type()).append("_").append(std::to_string(cur_->index()));
  if (nodes_of_op_ > 0) n.name.append("_").append(std::to_string(nodes_of_op_));
  ++nodes_of_op_;
  n.op_type = type;
  n.inputs = std::move(ins);
  n.outputs = std::move(outs);
  n.attrs = std::move(attrs);
  g_.nodes.push_back(std::move(n));
}

bool PaddleConverter::dims(const std::string& var, Shape& out) const {
  auto it = g_.initializers.find(var);
  if (it != g_.initializers.end()) {
    out = it->second.shape();
    return true;
  }
  const auto* v = varDesc(var);
  if (!v || !v->type().has_lod_tensor() || !v->type().lod_tensor().has_tensor()) return false;
  const auto& d = v->type().lod_tensor().tensor().dims();
  out.assign(d.begin(), d.end());
  return true;
}

int PaddleConverter::rank(const std::string& var) const {
  Shape s;
  return dims(var, s) ? static_cast<int>(s.size()) : -1;
}

Tensor* PaddleConverter::init(const std::string& name) {
  auto it = g_.initializers.find(name);
  return it == g_.initializers.end() ? nullptr : &it->second;
}

int PaddleConverter::consumers(const std::string& var) const {
  auto it = consumers_.find(var);
  return it == consumers_.end() ? 0 : it->second;
}

namespace {

DType feedType(const proto::VarDesc* v, const std::string& name) {
  if (!v || !v->type().has_lod_tensor()) return DType::kF32;
  switch (v->type().lod_tensor().tensor().data_type()) {
    case proto::VarType::FP32: return DType::kF32;
    case proto::VarType::INT64: return DType::kI64;
    default:
      SLIM_THROW(ModelError, "graph input '", name, "' has element type ",
                 proto::VarType::Type_Name(v->type().lod_tensor().tensor().data_type()),
                 "; only FP32 and INT64 inputs are supported");
  }
}

}  // namespace

void PaddleConverter::addInputs(const std::vector<std::pair<int64_t, std::string>>& feeds) {
  for (const auto& [col, name] : feeds) {
    graph::ValueInfo vi;
    vi.name = name;
    dims(name, vi.shape);
    vi.dtype = feedType(varDesc(name), name);
    g_.inputs.push_back(vi);
  }
}

// Programs without feed ops: inputs are the non-persistable vars that some op
// reads and no op writes.
void PaddleConverter::inferInputs() {
  std::set<std::string> written;
  std::vector<std::pair<int64_t, std::string>> feeds;
  for (const auto& op : block_.ops()) {
    for (const auto& in : op.inputs())
      for (const auto& a : in.arguments())
        if (!written.count(a) && !g_.initializers.count(a) && a != "feed" &&
            std::none_of(feeds.begin(), feeds.end(), [&](auto& f) { return f.second == a; }))
          feeds.emplace_back(static_cast<int64_t>(feeds.size()), a);
    for (const auto& o : op.outputs())
      for (const auto& a : o.arguments()) written.insert(a);
  }
  addInputs(feeds);
}

graph::Graph PaddleConverter::run() {
  const auto& convs = paddleOpConverters();
  std::vector<std::pair<int64_t, std::string>> feeds, fetches;
  for (const auto& op : block_.ops())
    if (op.type() == "feed") {
      OpView v(op, 0);
      feeds.emplace_back(v.i("col", static_cast<int64_t>(feeds.size())), v.out("Out"));
    }
  std::sort(feeds.begin(), feeds.end());
  if (feeds.empty()) inferInputs();
  else addInputs(feeds);
  for (const auto& in : g_.inputs) defined_.insert(in.name);

  for (int k = 0; k < block_.ops_size(); ++k) {
    const auto& op = block_.ops(k);
    OpView view(op, k);
    cur_ = &view;
    nodes_of_op_ = 0;
    if (op.type() == "feed") continue;
    try {
      if (op.type() == "fetch") {
        fetches.emplace_back(view.i("col", static_cast<int64_t>(fetches.size())),
                             input(view.in("X")));
        continue;
      }
      auto it = convs.find(op.type());
      if (it == convs.end()) {
        std::string known;
        for (const auto& kv : convs) {
          if (!known.empty()) known.append(", ");
          known.append(kv.first);
        }
        SLIM_THROW(ModelError, "unsupported Paddle op '", op.type(), "' (supported: ", known,
                   ")");
      }
      for (const auto& a : op.attrs())
        if (a.type() == proto::BLOCK || a.type() == proto::BLOCKS)
          SLIM_THROW(ModelError, "control flow (sub-block attribute '", a.name(),
                     "') is not supported");
      it->second(*this, view);
    } catch (const Error& e) {
      SLIM_THROW(ModelError, label_, ": Paddle op #", k, " '", op.type(), "' (output '",
                 view.firstOutput(), "'): ", e.what());
    }
  }
  cur_ = nullptr;
  std::sort(fetches.begin(), fetches.end());
  for (const auto& [col, name] : fetches) {
    graph::ValueInfo vi;
    vi.name = name;
    dims(name, vi.shape);
    g_.outputs.push_back(vi);
  }
  if (g_.outputs.empty())
    SLIM_THROW(ModelError, label_, ": the Paddle program has no fetch ops (no outputs)");
  g_.validate();
  return std::move(g_);
}

const std::map<std::string, OpConvertFn>& paddleOpConverters() {
  static const std::map<std::string, OpConvertFn> m = [] {
    std::map<std::string, OpConvertFn> r;
    addNnConverters(r);
    addTensorConverters(r);
    return r;
  }();
  return m;
}

}  // namespace slim::models::detail
