// Teacher merge pass (act-reference §5.1, ACT's merge with merge_feed): copies
// the teacher model into the student graph under the "teacher_" prefix. The
// teacher reads the student's input tensors, its weights are frozen deep
// copies, and every teacher node carries slim_frozen = 1 so BatchNormalization
// and Dropout always run it in inference mode while the student trains.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "trainer/graph/graph.h"

namespace slim::compress {

/// Prefix of every merged teacher tensor and node name.
inline constexpr const char* kTeacherPrefix = "teacher_";
/// Node attribute (int64 1) marking teacher nodes: kernels with a train mode
/// (BatchNormalization, Dropout) run such nodes in inference mode.
inline constexpr const char* kFrozenAttr = "slim_frozen";

/// What mergeTeacher added to the student graph.
struct TeacherInfo {
  /// Teacher graph input name -> the student input it reads (positional).
  std::map<std::string, std::string> input_map;
  /// Every other teacher tensor name -> its merged name ("teacher_" + name).
  std::map<std::string, std::string> tensor_map;
  /// Merged names of the teacher graph's outputs (e.g. "teacher_logits"), in
  /// order; inputs passed straight through map to the student input.
  std::vector<std::string> outputs;
  /// Merged names of the teacher nodes, in the teacher's order.
  std::vector<std::string> nodes;
  /// Merged names of the teacher initializers (frozen constants).
  std::vector<std::string> initializers;
};

/// Copies every node, tensor and initializer of `teacher` into `student`,
/// prefixing all tensor and node names with "teacher_" except the teacher's
/// graph inputs, which are mapped positionally to the student's inputs.
/// Teacher initializers are deep copies, neither trainable nor buffers; every
/// teacher node gets attribute slim_frozen = 1. The student's own nodes,
/// inputs, outputs and initializers are untouched and the teacher outputs are
/// not added to the graph outputs. `teacher` may be the same object as
/// `student` (self-distillation from the current weights).
/// @param student the graph to extend (nodes are re-sorted topologically)
/// @param teacher the teacher model (inference graph)
/// @return the name mapping; throws ModelError when the input counts, shapes
///         or dtypes differ (the teacher must read the student's inputs), or
///         when a prefixed name already exists in the student
TeacherInfo mergeTeacher(graph::Graph& student, const graph::Graph& teacher);

/// True for a node added by mergeTeacher (attribute slim_frozen = 1).
/// @param n any node
bool isFrozenNode(const graph::Node& n);

}  // namespace slim::compress
