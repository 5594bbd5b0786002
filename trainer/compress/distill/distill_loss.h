// Distillation objective construction (act-reference §5.4 plus slimtrain's
// optional task loss, SEMANTICS.md §2): resolves the configured node groups
// against a graph that already holds the merged teacher, checks the names and
// the shapes it can know, and appends the loss nodes
//   total = sum_g alpha_g * sum_{pairs in g} loss_g(teacher, student)
//           [+ task_loss_weight * SoftmaxCrossEntropyLoss(student_logits, label)]
// built from ordinary graph nodes, so the executor differentiates it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/graph/graph.h"

namespace slim::compress {

/// One loss node of the objective (one teacher/student pair).
struct DistillTerm {
  std::string tensor;  ///< scalar output of the loss node
  std::string label;   ///< readable, e.g. "l2:teacher_x->x"
  std::string loss;    ///< "l2" | "soft_label"
  size_t group = 0;    ///< index into DistillLoss::groups
  config::DistillPair pair;
};

/// What buildDistillLoss added.
struct DistillLoss {
  std::string objective;              ///< scalar to minimise ("distill_loss_total")
  std::vector<DistillTerm> terms;     ///< one per pair, groups in order
  std::vector<std::string> group_tensors;  ///< alpha_g * sum of group g's terms
  /// Per loss type ("l2", "soft_label", and "task" when on): the weighted
  /// partial sum of the objective it contributes (ACT logs these).
  std::map<std::string, std::string> by_loss;
  std::string task_tensor;            ///< weighted task loss, "" when off
  /// The resolved groups: automatic nodes filled in (for report.json
  /// `distill_pairs`).
  std::vector<config::DistillGroup> groups;
  bool needs_labels = false;          ///< the label input must be fed
  std::string label_input;            ///< "" when !needs_labels
};

/// Appends the distillation objective to `g`, which must already contain the
/// merged teacher (mergeTeacher). Groups with no pairs (automatic mode) get
/// defaultDistillNodes(g), each paired with "teacher_<name>". The objective
/// tensor is added to the graph outputs (as the classification loss is), so
/// pruneUnused keeps the teacher; the loss ops are registered if needed.
/// @param g the merged student+teacher graph
/// @param d the Distillation section
/// @param student_logits student tensor fed to the task loss ([N, C] logits);
///        checked only when d.task_loss is set
/// @param label_input int64 label graph input for the task loss; added as an
///        input of shape [-1] when absent. Ignored ("" allowed) when
///        d.task_loss is empty; required for "cross_entropy".
/// @return names of everything added; throws ConfigError naming the key, the
///         missing tensor and the closest existing names, or a shape mismatch
DistillLoss buildDistillLoss(graph::Graph& g, const config::Distillation& d,
                             const std::string& student_logits,
                             const std::string& label_input);

/// The pairs of all groups as "teacher->student" strings, group by group
/// (report.json `distill_pairs`).
/// @param loss a built objective
std::vector<std::string> pairStrings(const DistillLoss& loss);

}  // namespace slim::compress
