// Activation fusion inside the executor (the Graph is not changed): a Relu or
// Clip that is the only reader of a Conv / BatchNormalization output is
// applied by that producer as it writes the output, and the activation node
// then only shares its input's storage (Op::fuseOutputActivation,
// Op::forwardAsAlias). Same bits forward and backward; one pass over the
// tensor and one tensor's memory less per pair. Likewise in backward, the
// activation's mask can be applied by the op that reads its output
// (maskActivationGrads). The other fusions below follow the same rule: an
// op hands work on a tensor to the op that writes or reads it anyway (abs-
// max, clip, row sums, per-row passes, a frozen norm), with the same bits.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trainer/graph/graph.h"
#include "trainer/ops/op.h"

namespace slim::graph::detail {

struct FusedActivation {
  size_t producer = 0, activation = 0;  ///< node indices (graph order)
};

/// Fuses every eligible pair of `g` (ops[i] is node i's op): the tensor
/// between them has no other reader and is not a graph output, and a Clip's
/// bounds are constants (attributes, or non-trainable scalar initializers).
std::vector<FusedActivation> fuseActivations(const Graph& g,
                                             std::vector<std::unique_ptr<ops::Op>>& ops);

/// A frozen BatchNormalization fused into the Conv that writes its input
/// (Op::frozenNorm / Op::fuseOutputNorm): the Conv applies the norm and its
/// fused activation, the norm node shares the Conv's output storage. Only
/// outside backward (`in_backward[node]` false for both: a teacher), with
/// the Conv's output read by nothing else and not a graph output, and the
/// norm's parameters non-trainable initializers. `value` gives the tensor
/// the executor binds to an initializer's name (stable for its lifetime).
struct FusedNorm {
  size_t producer = 0, norm = 0;  ///< node indices
};
std::vector<FusedNorm> fuseFrozenNorms(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
    const std::vector<bool>& in_backward,
    const std::function<const Tensor*(const std::string&)>& value,
    std::vector<std::unique_ptr<ops::FrozenNormLink>>& links);

/// Backward fusion: a Relu / Clip (constant bounds) whose output's only
/// reader is input 0 of an op that accepts Op::maskInputGradient: that op
/// applies the activation's backward to the gradient it writes, and the
/// executor hands that gradient straight to the activation's input.
struct MaskedActivation {
  size_t activation = 0, consumer = 0;  ///< node indices
  ops::ActEpilogue act;
};
std::vector<MaskedActivation> maskActivationGrads(const Graph& g,
                                                  std::vector<std::unique_ptr<ops::Op>>& ops);

/// Forward fusion: an op that can take max |input 0| from its producer
/// (Op::readInputAbsMax; fake quantizers) is linked to a producer that can
/// compute it as it writes (Op::publishOutputAbsMax; PACT), which saves the
/// reader a pass over the tensor. The returned links must outlive the ops'
/// use of them.
std::vector<std::unique_ptr<ops::AbsMaxLink>> linkAbsMax(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops);

/// A producer's clip left to the only reader of its output
/// (Op::handOutputClip / readInputClip; PACT and its fake quantizer, which
/// already takes PACT's abs-max): the producer writes no output, which shares
/// its input's storage; the reader clips as it reads. Returns the producers
/// (their outputs become aliases) and fills `links`, which must outlive the
/// ops' use of them.
std::vector<size_t> handOverClips(const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
                                  std::vector<std::unique_ptr<ops::ClipLink>>& links);

/// A reader's per-row pass over input 0 done by the op that writes it
/// (Op::readInputRowVisits / visitOutputRows; PACT's abs-max after a
/// BatchNormalization), through a fused activation to its producer: the
/// tensor is the reader's alone. `fused` are fuseActivations' pairs;
/// `value` gives the tensor bound to a name.
std::vector<std::unique_ptr<ops::RowVisitLink>> linkRowVisits(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
    const std::vector<FusedActivation>& fused,
    const std::function<const Tensor*(const std::string&)>& value);

/// Likewise the per-(image, channel) sums of a tensor: a training-mode
/// BatchNormalization takes its first statistics pass from the Conv that
/// wrote its input (Op::publishOutputRowSums / readInputRowSums).
std::vector<std::unique_ptr<ops::RowSumsLink>> linkRowSums(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops);

/// Forward fusion: an Add of a 1-D initializer (a Linear layer's bias) and a
/// MatMul output that the Add alone reads: the MatMul adds the bias as it
/// writes (Op::fuseOutputBias, same bits) and the Add's output shares its
/// buffer (Op::forwardAsAlias on operand `input`). Backward is unchanged.
struct FusedBias {
  size_t producer = 0, add = 0, input = 0;  ///< node indices; the Add's MatMul operand
};
std::vector<FusedBias> fuseBiasAdds(const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
                                    const std::function<const Tensor*(const std::string&)>& value);

/// PyTorch's exact GELU as five nodes, y = Mul(Mul(Add(Erf(Div(x, a)), b), x),
/// c) (operands of Add and the Muls in either order; a, b, c float scalar
/// constants), that the executor runs as one op (ops/fused_ops.h, same bits).
/// Only where each intermediate has the next node as its only reader, and x
/// is a node output read by the Div and the first Mul alone and not a graph
/// output: its gradient is then the sum of exactly the two contributions the
/// fused op adds, which does not depend on their order.
struct ErfGeluChain {
  size_t absorbed[4] = {};  ///< Div, Erf, Add, first Mul: run as nothing
  size_t last = 0;          ///< the second Mul: runs the fused op
  std::string x, a, b, c;   ///< the fused op's inputs
};
std::vector<ErfGeluChain> findErfGelus(const Graph& g);

/// x * f(x) as two nodes, f a Sigmoid (SiLU / swish) or HardSigmoid
/// (hard-swish) and the Mul's operands in either order, that the executor
/// runs as one op (ops/fused_ops.h makeSelfGated, same bits): where f's
/// output is read by the Mul alone, and x is a node output read by f and
/// the Mul alone and not a graph output.
struct SelfGate {
  size_t act = 0, mul = 0;  ///< f (absorbed) and the Mul (runs the fused op)
  std::string x;
};
std::vector<SelfGate> findSelfGates(const Graph& g);

}  // namespace slim::graph::detail
