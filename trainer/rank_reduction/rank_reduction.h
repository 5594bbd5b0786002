// Rank reduction: how a gradient (or a batch statistic) crosses ranks.
//
// The guarantee it serves (ARCHITECTURE.md, "Rank equivalence"): N ranks
// with batch B compute the same bits as one rank with batch N*B (per-rank
// batch a multiple of kSumChunk, N a power of two).
//
// THE POLICY (planReduction, below; plan.cc), decided once per graph when the
// Executor is built, identically on every rank:
//   - Exact path: the gradient of a parameter goes exact when every place it
//     meets batch data is an op that can finish that batch reduction over all
//     ranks itself (Op::reducesGradOverRanks: Conv, ConvTranspose, Gemm,
//     MatMul's weight operand, the normalisations' scale and bias, PRelu's
//     slope, PACT's alpha, an Add/Sub/Mul/Div operand, Gather's table,
//     Einsum's weight) and every other parameter upstream of those places
//     goes exact too. The ops then return that gradient already summed over
//     ranks, the mean of the ranks' gradients (Op::finishSum,
//     Op::finishPartials); the Executor reports it with gradReducedOverRanks
//     true. On N = 2^k ranks each partial is converted as partial / N,
//     exactly (FixedSum's shift, Op::gradShift), and the sum is not divided:
//     the integers are then one rank's at any magnitude. Other N: converted
//     as is, the sum divided by N.
//   - Float path: every other parameter gradient. Each rank computes it from
//     its own samples, and comm::GradReducer (comm/grad_reducer.h) takes the
//     mean over ranks with a bucketed float allreduce overlapped with the rest
//     of backward.
//   The trainer routes each gradient that backward reports to one of the two
//   paths with a GradientRouter (gradient_router.h). On one rank neither path
//   communicates.
//
// THE MECHANISMS:
//   - exact_sum.h: a batch reduction is float partials over fixed chunks of
//     kSumChunk samples (SumChunks), each partial converted to 128-bit fixed
//     point and the partials added as integers (FixedSum, sumPartials,
//     sumOverBatch). With a per-rank batch that is a multiple of kSumChunk, a
//     rank's slice of the global batch starts on a chunk boundary, so one
//     rank and N ranks form the same partials, up to the factor N every
//     gradient partial carries there (each rank's loss averages its own
//     samples); the shift above removes it exactly before truncation.
//   - sample_groups.h, sample_layout.h: the rows a product's weight gradient
//     reduces (MatMul, Gemm) form one partial per group of kSumChunk samples,
//     however their rows lie ([N, T, K], [T, N, K], [T*N, K]): the executor
//     follows where each tensor's samples lie through the graph and tells the
//     ops. Where it cannot tell, chunks of kSumChunk rows (the same bits on
//     any number of ranks too, but T / kSumChunk partials per sample of a
//     T-token sequence).
//   - state_sync.h: StateSync, the ops' only way to the other ranks;
//     sumOverRanks adds a FixedSum over ranks through StateSync::sumFixed.
//     comm_state_sync.h: CommStateSync implements sumFixed as an allgather of
//     the raw integers (bytes: no arithmetic in the transport, whatever the
//     backend) and an integer sum in rank order, so every rank holds the same
//     total. Batch-norm statistics cross ranks the same way.
//   - The float path: comm::GradReducer, a float sum allreduce of buckets of
//     gradients launched as they fill, then a division by N. It stays in comm/
//     because it is a transport (comm_bench measures it too).
//
// WHY: float addition is not associative. One rank sums its N*B samples in
// one order; N ranks sum B each and the allreduce adds those N partial sums in
// an order the backend picks (ring, tree, the rank count), so the result can
// differ in the last bit. An ulp is enough to flip a ReLU and, iterations
// later, the trajectory: with the partial sums allreduced as floats, the first
// global batch of configs/fmnist_pretrain.yaml already flipped a ReLU
// (tests/unit/train/data_parallel_test.cc) and 200 iterations diverged
// completely (DISTRIBUTED.md). Integer addition is associative, so the
// fixed-point chunk sums give the same total for any grouping of the chunks
// over threads and ranks, and every rank adds the same integers.
// The exact path needs a sum over the batch of contributions to a value every
// rank holds alike: hence only parameters and values computed from
// initializers alone ("replicated") qualify, at the op where they meet batch
// data (a "boundary"); backward through replicated nodes then turns a reduced
// gradient into a reduced one on every rank alike. A parameter takes one path
// whole: GradReducer averages all of a gradient it is given and the ops'
// reduction covers only their own contribution, so a gradient mixing
// contributions the ops already reduced with rank-local ones could take
// neither path. Hence a boundary is enabled only when every parameter upstream
// of it goes exact, iterated to a fixed point. The float path remains for
// gradients no op can reduce exactly (e.g. a weight as MatMul's first operand,
// an op without a fixed-point backward): they get the mean over ranks,
// correct up to rounding but not the one-rank bits. StateSync::allreduce
// (float) is used with kMax only (the observers' abs-max): a maximum does not
// round, so any order gives the same bits.
//
// Where each part builds: rank_reduction/sources.cmake (a library of its own
// would make a cycle with the ops layer).
#pragma once

#include <cstddef>
#include <functional>
#include <set>
#include <vector>

namespace slim::rank_reduction {

/// The graph as the policy sees it: value ids, nodes in topological order.
struct GraphFacts {
  size_t values = 0;                                   ///< value ids are [0, values)
  const std::vector<int>& initializers;                ///< identical on every rank
  const std::vector<int>& params;                      ///< trainable parameters
  const std::vector<std::vector<int>>& node_in;        ///< per node: input ids, -1 = omitted
  const std::vector<std::vector<int>>& node_out;       ///< per node: output ids
  const std::vector<bool>& node_backward;              ///< per node: runs backward
  const std::vector<std::vector<bool>>& node_in_grad;  ///< per node input: needs a gradient
  /// Op::reducesGradOverRanks of node `node`'s input `input`.
  std::function<bool(size_t node, size_t input)> can_reduce;
};

/// The policy's decision.
struct Plan {
  /// Per node: the inputs whose gradient the op reduces over ranks itself
  /// (Op::setRankReducedInputs); empty for a node with none.
  std::vector<std::vector<bool>> reduced_inputs;
  /// The parameters (value ids) whose gradient is then exact and complete:
  /// the trainer's float path skips them.
  std::set<int> exact_params;
};

/// Which gradients take the exact path (see above). Iterated to a fixed point.
Plan planReduction(const GraphFacts& g);

}  // namespace slim::rank_reduction
