// Graph IR: named tensors, nodes {op_type, inputs, outputs, attrs}, and
// initializers (constant tensors) of three kinds: trainable parameters,
// buffers (state updated in training: BN running stats, observer state) and
// plain constants. Importers build a Graph, passes rewrite it, the exporter
// writes it. Initializer tensors are shared (shallow) with executors, so an
// optimizer step on graph.initializers is what the next forward sees.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"
#include "trainer/ops/attrs.h"

namespace slim::graph {

/// A graph input or output. Dimension -1 is dynamic (the batch).
struct ValueInfo {
  std::string name;
  Shape shape;
  DType dtype = DType::kF32;
};

struct Node {
  std::string name;     ///< unique node name (importers keep the producer's)
  std::string op_type;  ///< ONNX op name or slimtrain op name
  std::vector<std::string> inputs;   ///< "" marks an omitted optional input
  std::vector<std::string> outputs;
  ops::Attrs attrs;
};

class Graph {
 public:
  std::string name = "graph";
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;  ///< kept in topological order by topoSort()
  std::map<std::string, Tensor> initializers;
  std::set<std::string> trainable;  ///< initializers that get gradients
  std::set<std::string> buffers;    ///< initializers updated in training

  /// Adds an initializer (kind: trainable when `train`, buffer when `buffer`).
  void addInitializer(const std::string& name, Tensor t, bool train = false,
                      bool buffer = false);
  bool isInitializer(const std::string& name) const {
    return initializers.count(name) != 0;
  }
  bool isInput(const std::string& name) const;

  /// Index of the node producing `tensor`, or -1 (inputs, initializers).
  int producer(const std::string& tensor) const;
  /// Indices of nodes reading `tensor`.
  std::vector<int> consumers(const std::string& tensor) const;
  /// Bounds of a Clip node when they are constants: attributes (opset < 11)
  /// or non-trainable float scalar initializers; a missing bound is -inf /
  /// +inf. False when a bound is computed at run time.
  bool constantClipBounds(const Node& clip, float& lo, float& hi) const;
  /// All tensor names that appear anywhere (inputs, initializers, node outputs).
  std::set<std::string> tensorNames() const;
  /// A name not used yet, built from `base`.
  std::string uniqueName(const std::string& base) const;

  /// Reorders nodes topologically (stable); throws ModelError on a cycle or a
  /// node input that nothing produces.
  void topoSort();
  /// Checks names are unique and every input is defined; throws ModelError.
  void validate() const;
  /// Removes nodes whose outputs no graph output needs, and unused initializers.
  void pruneUnused();
  /// Deep copy (initializers cloned).
  Graph clone() const;
};

}  // namespace slim::graph
