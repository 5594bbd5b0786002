// Internal: the block-0 -> Graph converter shared by the per-op converter
// files. OpView reads one OpDesc (slots, typed attributes with Paddle's
// loose typing); PaddleConverter owns the Graph being built, keeps Paddle's
// tensor names and renames in-place writes so the graph stays single-assignment.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "trainer/graph/graph.h"
#include "trainer/models/paddle/framework.pb.h"

namespace slim::models::detail {

namespace proto = paddle::framework::proto;

/// Read access to one Paddle op. Getters throw ModelError naming the attribute.
class OpView {
 public:
  OpView(const proto::OpDesc& op, int index) : op_(op), index_(index) {}
  const std::string& type() const { return op_.type(); }
  int index() const { return index_; }

  /// Variable names of an input / output slot ({} when the slot is absent).
  std::vector<std::string> inputs(const std::string& slot) const;
  std::vector<std::string> outputs(const std::string& slot) const;
  /// Exactly one variable in the slot, or ModelError.
  std::string in(const std::string& slot) const;
  std::string out(const std::string& slot) const;
  /// The slot's single variable or "" when absent or empty.
  std::string optIn(const std::string& slot) const;
  /// First output variable of any slot (for messages), "" if none.
  std::string firstOutput() const;

  bool has(const std::string& name) const { return find(name) != nullptr; }
  int64_t i(const std::string& name, int64_t dflt) const;
  float f(const std::string& name, float dflt) const;
  bool b(const std::string& name, bool dflt) const;
  std::string s(const std::string& name, const std::string& dflt) const;
  std::vector<int64_t> ints(const std::string& name, const std::vector<int64_t>& dflt) const;

 private:
  const proto::OpDesc::Attr* find(const std::string& name) const;
  const proto::OpDesc& op_;
  int index_;
};

class PaddleConverter {
 public:
  /// `params` holds every persistable tensor (already loaded or zero-filled).
  PaddleConverter(const proto::ProgramDesc& prog, std::map<std::string, Tensor> params,
                  std::string label, bool program_only);
  graph::Graph run();

  // ---- helpers for op converters ----
  /// Current graph name of Paddle variable `var` (follows in-place renames).
  std::string input(const std::string& var) const;
  /// Graph name for a value the op writes: `var` itself, or a fresh name when
  /// `var` already exists (in-place op); later reads of `var` see the new name.
  std::string output(const std::string& var);
  /// Makes reads of `alias` resolve to `target` (batch_norm MeanOut -> Mean).
  void alias(const std::string& alias, const std::string& target);
  /// A fresh tensor name built from `base`.
  std::string tmp(const std::string& base);
  /// Adds a constant (non-trainable) initializer under a fresh name; returns it.
  std::string constant(const std::string& base, Tensor t);
  std::string scalar(const std::string& base, float v);
  /// Adds a node named after the current Paddle op.
  void node(const std::string& type, std::vector<std::string> ins,
            std::vector<std::string> outs, ops::Attrs attrs = {});

  /// Declared dims of Paddle variable `var` (graph name or Paddle name);
  /// false when unknown. Initializers report their actual shape.
  bool dims(const std::string& var, Shape& out) const;
  /// Rank of `var`, -1 when unknown.
  int rank(const std::string& var) const;
  /// The initializer `name` or nullptr.
  Tensor* init(const std::string& name);
  /// Number of ops of block 0 reading Paddle variable `var`.
  int consumers(const std::string& var) const;

  graph::Graph& graph() { return g_; }
  bool programOnly() const { return program_only_; }
  const OpView& op() const { return *cur_; }

 private:
  void addInputs(const std::vector<std::pair<int64_t, std::string>>& feeds);
  void inferInputs();
  const proto::VarDesc* varDesc(const std::string& name) const;

  const proto::BlockDesc& block_;
  std::string label_;
  bool program_only_;
  graph::Graph g_;
  std::map<std::string, const proto::VarDesc*> vars_;
  std::map<std::string, std::string> rename_;   // Paddle name -> graph name
  std::map<std::string, std::string> origin_;   // graph name -> Paddle name
  std::map<std::string, int> consumers_;
  std::set<std::string> defined_;
  const OpView* cur_ = nullptr;
  int nodes_of_op_ = 0;
};

/// Converts one Paddle op (feed and fetch are handled by the converter).
using OpConvertFn = void (*)(PaddleConverter& c, const OpView& op);

/// Paddle op type -> converter, over all converter files.
const std::map<std::string, OpConvertFn>& paddleOpConverters();
/// Registration parts (one per converter file).
void addNnConverters(std::map<std::string, OpConvertFn>& m);     // conv, bn, pool, activations
void addTensorConverters(std::map<std::string, OpConvertFn>& m);  // elementwise, matmul, shape

}  // namespace slim::models::detail
