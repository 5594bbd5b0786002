// mergeTeacher: renaming, positional feed sharing and freezing of the teacher.
// All checks run before the student graph is modified, so a failed merge
// leaves the student exactly as it was.
#include "trainer/compress/distill/teacher_merge.h"

#include <set>

namespace slim::compress {
namespace {

bool dimsCompatible(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t d = 0; d < a.size(); ++d)
    if (a[d] >= 0 && b[d] >= 0 && a[d] != b[d]) return false;
  return true;
}

void checkInputs(const graph::Graph& student, const graph::Graph& teacher) {
  if (student.inputs.size() != teacher.inputs.size())
    SLIM_THROW(ModelError, "distillation: the teacher model '", teacher.name, "' has ",
               teacher.inputs.size(), " inputs but the student '", student.name, "' has ",
               student.inputs.size(),
               "; the teacher reads the student's inputs (merge_feed), so both need the "
               "same inputs in the same order");
  for (size_t i = 0; i < student.inputs.size(); ++i) {
    const auto& s = student.inputs[i];
    const auto& t = teacher.inputs[i];
    if (!dimsCompatible(s.shape, t.shape) || s.dtype != t.dtype)
      SLIM_THROW(ModelError, "distillation: teacher input ", i, " '", t.name, "' is ",
                 dtypeName(t.dtype), " ", shapeStr(t.shape), " but student input '", s.name,
                 "' is ", dtypeName(s.dtype), " ", shapeStr(s.shape),
                 "; the teacher reads the student's inputs, so they must match");
  }
}

// Teacher node names are unique (Graph::validate); an unnamed node gets its
// index so merged names stay unique too.
std::string mergedNodeName(const graph::Node& nd, size_t i) {
  return kTeacherPrefix + (nd.name.empty() ? "node_" + std::to_string(i) : nd.name);
}

}  // namespace

bool isFrozenNode(const graph::Node& n) {
  return n.attrs.has(kFrozenAttr) && n.attrs.getInt(kFrozenAttr, 0) == 1;
}

TeacherInfo mergeTeacher(graph::Graph& student, const graph::Graph& teacher_in) {
  // Self-distillation passes the student itself: work from a snapshot.
  graph::Graph snapshot;
  const graph::Graph* tp = &teacher_in;
  if (&student == &teacher_in) {
    snapshot = teacher_in.clone();
    tp = &snapshot;
  }
  const graph::Graph& teacher = *tp;
  checkInputs(student, teacher);

  TeacherInfo info;
  for (size_t i = 0; i < teacher.inputs.size(); ++i)
    info.input_map[teacher.inputs[i].name] = student.inputs[i].name;
  auto rename = [&](const std::string& n) -> std::string {
    if (n.empty()) return n;  // omitted optional input stays omitted
    auto in = info.input_map.find(n);
    if (in != info.input_map.end()) return in->second;
    auto it = info.tensor_map.find(n);
    if (it != info.tensor_map.end()) return it->second;
    std::string merged = kTeacherPrefix + n;
    info.tensor_map.emplace(n, merged);
    return merged;
  };
  for (const auto& kv : teacher.initializers) rename(kv.first);
  for (const auto& nd : teacher.nodes) {
    for (const auto& s : nd.inputs) rename(s);
    for (const auto& s : nd.outputs) rename(s);
  }
  for (const auto& o : teacher.outputs) info.outputs.push_back(rename(o.name));

  // Collisions with anything the student already names (tensors or nodes).
  std::set<std::string> used = student.tensorNames();
  std::set<std::string> node_names;
  for (const auto& nd : student.nodes) node_names.insert(nd.name);
  for (const auto& kv : info.tensor_map)
    if (used.count(kv.second))
      SLIM_THROW(ModelError, "distillation: the student already has a tensor named '",
                 kv.second, "', which is the name the teacher's tensor '", kv.first,
                 "' gets after prefixing; rename it in the student model");
  for (size_t i = 0; i < teacher.nodes.size(); ++i) {
    const auto& nd = teacher.nodes[i];
    const std::string merged = mergedNodeName(nd, i);
    if (node_names.count(merged) || used.count(merged))
      SLIM_THROW(ModelError, "distillation: the student already has a node or tensor named '",
                 merged, "', the merged name of teacher node '", nd.name, "'");
  }

  // Everything checked: extend the student.
  for (const auto& kv : teacher.initializers) {
    const std::string& merged = info.tensor_map.at(kv.first);
    student.addInitializer(merged, kv.second.clone(), /*train=*/false, /*buffer=*/false);
    info.initializers.push_back(merged);
  }
  for (size_t i = 0; i < teacher.nodes.size(); ++i) {
    const auto& nd = teacher.nodes[i];
    graph::Node copy = nd;
    copy.name = mergedNodeName(nd, i);
    for (auto& s : copy.inputs) s = rename(s);
    for (auto& s : copy.outputs) s = rename(s);
    copy.attrs.set(kFrozenAttr, int64_t{1});
    info.nodes.push_back(copy.name);
    student.nodes.push_back(std::move(copy));
  }
  student.topoSort();
  return info;
}

}  // namespace slim::compress
