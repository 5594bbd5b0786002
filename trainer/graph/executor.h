// Executor: runs a Graph forward over its topological order, keeps what
// backward needs, runs backward in reverse order and reports each trainable
// parameter's gradient as soon as it is final (the last consumer's backward
// has run) so a reducer can start allreducing early.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "trainer/graph/graph.h"
#include "trainer/ops/op.h"

namespace slim::graph {

class Executor {
 public:
  /// Builds one op per node. The graph must outlive the executor; its
  /// initializers are shared with it (updates are visible to both).
  /// `fuse_activations`: a Relu/Clip that alone reads a Conv or
  /// BatchNormalization output is applied by that op (fuse.h; same bits,
  /// less memory). value() of such a producer's output then returns the
  /// activated values (the same tensor as the activation's output). It also
  /// turns on the other fusions of fuse.h (masked activation gradients, a
  /// quantizer taking its abs-max and its clip from the PACT before it, a
  /// training BatchNormalization its row sums from the Conv before it, a
  /// frozen one running inside its Conv), all same bits; and backward skips
  /// gradients no op will use this step (Op::outputGradientUnused: the
  /// image's gradient when the input PACT clipped nothing).
  explicit Executor(Graph& g, bool fuse_activations = true);
  ~Executor();

  /// Runs all nodes. `feeds` must hold every graph input (dtype float32 or
  /// int64 as declared). Outputs and intermediates stay readable via value().
  void forward(const std::map<std::string, Tensor>& feeds, ops::RunContext& ctx);

  /// Value of any tensor after forward (inputs, initializers, node outputs).
  const Tensor& value(const std::string& name) const;
  bool hasValue(const std::string& name) const;

  /// Backpropagates from `seeds` (tensor name -> gradient of the objective
  /// w.r.t. it, same shape). Calls `on_param_grad(name, grad)` once per
  /// trainable parameter as soon as its gradient is complete, in the order
  /// they become ready. Parameters no seed depends on get zero gradients.
  void backward(const std::map<std::string, Tensor>& seeds, ops::RunContext& ctx,
                const std::function<void(const std::string&, Tensor&)>&
                    on_param_grad = {});

  /// Gradient of a trainable parameter after backward().
  Tensor& grad(const std::string& param);
  /// Gradient of any tensor after backward() (undefined if none flowed, and
  /// for non-parameters unless keepIntermediateGrads(true)).
  const Tensor& gradOf(const std::string& name) const;
  /// By default backward hands the gradient buffer of an intermediate tensor
  /// back to a pool once its producer has used it, and takes the buffers ops
  /// write into from that pool: peak memory holds the live gradients, not
  /// one per tensor, and a repeated step allocates nothing. true keeps every
  /// gradient for gradOf (tests, debugging).
  void keepIntermediateGrads(bool keep);
  /// true: forward hands a node output to the same pool once its last
  /// consumer ran, when no backward reads its values and it is not a graph
  /// output: a frozen teacher's activations, and a student's that backward
  /// needs only the shape of (Op::backwardReadsInput / backwardReadsOutput:
  /// a MatMul's output before its bias Add, the scores before Softmax).
  /// A forward without RunContext::training frees every value but the
  /// outputs and kept ones (no backward may follow it). Such outputs are
  /// written into pooled buffers. value() of those tensors is then
  /// unavailable after forward. Default false.
  void releaseForwardValues(bool release);
  /// Keeps `name` readable by value() after forward when
  /// releaseForwardValues(true) would free it (a loss term, evaluation
  /// logits). Graph outputs are always kept. Unknown names are ignored.
  void keepValue(const std::string& name);

  /// Bytes of the buffers held for reuse (released activations, used-up
  /// gradients): what the pool adds to the live tensors' memory.
  size_t pooledBytes() const;

  /// True when the ops compute this parameter's gradient already reduced over
  /// all ranks (exactly, world-size invariant): the gradient reducer must skip
  /// it. Decided once from the graph by rank_reduction::planReduction
  /// (trainer/rank_reduction/rank_reduction.h).
  bool gradReducedOverRanks(const std::string& param) const;

  /// Trainable parameter names in the order backward makes them ready.
  const std::vector<std::string>& paramsInReadyOrder() const { return ready_order_; }

  Graph& graph() { return graph_; }
  /// The op instance of node `i` (graph order), e.g. for passes to inspect.
  ops::Op& op(size_t i) { return *ops_[i]; }

 private:
  void planRankReduction();  ///< applies rank_reduction::planReduction
  /// Gives fused patterns' nodes their fused op (executor_fuse.cc).
  void substituteFusedOps();
  /// After node `node`'s forward: its outputs' sample layouts (sample_layout.h).
  void noteSampleLayouts(size_t node);
  void markRecomputable(const std::vector<bool>& kept_for_backward);
  void rebuild(int value, ops::RunContext& ctx, std::vector<int>& rebuilt);

  struct Impl;
  Graph& graph_;
  std::set<std::string> rank_reduced_;
  std::vector<std::unique_ptr<ops::Op>> ops_;
  std::vector<std::string> ready_order_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slim::graph
