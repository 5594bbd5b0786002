// The kernel interface: one Op instance per graph node, created from the node's
// attributes by the registry. forward() computes outputs; backward() turns
// output gradients into input gradients. An Op may keep whatever forward
// computed for backward in its members (each node owns its instance, and the
// executor always runs backward of the forward it just ran).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "trainer/core/rng.h"
#include "trainer/core/tensor.h"
#include "trainer/ops/attrs.h"
#include "trainer/rank_reduction/sample_groups.h"
#include "trainer/rank_reduction/state_sync.h"

namespace slim::ops {

/// Per-run settings passed to every op.
struct RunContext {
  bool training = false;        ///< train mode (BN batch stats, dropout, observers update)
  rank_reduction::StateSync* sync = nullptr;  ///< cross-rank state sync; null = one rank
  Rng* rng = nullptr;           ///< randomness (dropout); required when training uses it
  /// Faster kernels whose rounding differs from the reference path: Conv
  /// runs its qualifying 3x3 convs (forward and input gradient) by Winograd
  /// F(4x4, 3x3) (winograd.h). Still the same bits for any thread count and
  /// rank split. Set only for the training step (trainer.cc): evaluation,
  /// the export check and `eval` keep the direct path that matches ONNX
  /// Runtime.
  bool fast_conv = false;
};

/// Relu and Clip's forward functions, shared by their ops and by the
/// producers that apply them as an output epilogue (same expressions, so
/// the same bits for every input, -0 and NaN included).
inline float reluValue(float x) { return x > 0.f ? x : 0.f; }
inline float clipValue(float x, float lo, float hi) { return std::min(hi, std::max(lo, x)); }
/// Their backward: the gradient g passes where x (the input, or the
/// activated value: the same mask) is inside the open interval.
inline float reluGrad(float x, float g) { return x > 0.f ? g : 0.f; }
inline float clipGrad(float x, float lo, float hi, float g) { return (x > lo && x < hi) ? g : 0.f; }

/// An activation a producer applies to its output 0 as it writes it (the
/// executor fuses Conv/BatchNormalization -> Relu/Clip: Graph unchanged).
struct ActEpilogue {
  enum class Kind { kNone, kRelu, kClip };
  Kind kind = Kind::kNone;
  float lo = 0.f, hi = 0.f;  ///< kClip bounds
  /// Calls f(act) with act(float) -> float, the identity for kNone; lets a
  /// kernel instantiate its output loop once per kind.
  template <class F>
  void visit(F&& f) const {
    if (kind == Kind::kRelu) return f([](float v) { return reluValue(v); });
    if (kind == Kind::kClip) {
      const float l = lo, h = hi;
      return f([l, h](float v) { return clipValue(v, l, h); });
    }
    f([](float v) { return v; });
  }
  /// dx[i] = the activation's backward at x[i] (its input or output) for
  /// the gradient dx[i], i < n; nothing for kNone.
  void maskGrad(const float* __restrict x, float* __restrict dx, int64_t n) const {
    if (kind == Kind::kRelu)
      for (int64_t i = 0; i < n; ++i) dx[i] = reluGrad(x[i], dx[i]);
    if (kind == Kind::kClip) {
      const float l = lo, h = hi;
      for (int64_t i = 0; i < n; ++i) dx[i] = clipGrad(x[i], l, h, dx[i]);
    }
  }
};

/// Inference-mode BatchNormalization as y = fma(x, a, b) per channel: the
/// coefficients, computed alike by the op and by a Conv that applies it.
inline float normInvStd(float var, float eps) { return 1.f / std::sqrt(var + eps); }
/// A variance v >= 0 with normInvStd(v, eps) == 1 exactly (a batch norm with
/// scale 1, bias 0, mean 0 and this variance is the identity); NaN if none
/// lies just below 1 - eps.
inline float normUnitVariance(float eps) {
  float v = std::max(0.f, 1.f - eps);
  for (int k = 0; k < 8; ++k, v = std::nextafter(v, 0.f))
    if (normInvStd(v, eps) == 1.f) return v;
  return std::nanf("");
}
inline void normCoeffs(float scale, float invstd, float mean, float bias, float& a, float& b) {
  a = scale * invstd;
  b = std::fma(-mean, a, bias);
}

/// A frozen BatchNormalization (and the activation fused into it) that the
/// Conv writing its input applies as that Conv's output epilogue (executor
/// fusion; see Op::fuseOutputNorm). The tensors are the BN's scale, bias,
/// mean and var, read when the Conv runs.
struct FrozenNormLink {
  const Tensor* scale = nullptr;
  const Tensor* bias = nullptr;
  const Tensor* mean = nullptr;
  const Tensor* var = nullptr;
  float eps = 0.f;
  ActEpilogue act;
};

/// max |output 0| of a producer's last training forward, published for the
/// op reading it (executor fusion; see Op::publishOutputAbsMax).
struct AbsMaxLink {
  float value = 0.f;   ///< NaN when any value was NaN
  bool valid = false;  ///< set by the producer's training forward
};

/// The symmetric clip [-bound, bound] a producer (PACT) leaves to the op
/// reading its output (a fake quantizer) in a training forward, writing no
/// output of its own (executor fusion; see Op::handOutputClip).
struct ClipLink {
  float bound = 0.f;
  bool valid = false;  ///< set by the producer's training forward
};

/// A reader's per-row work on output 0, which the producer does as it writes
/// each row, while the row is in cache (executor fusion; see
/// Op::visitOutputRows): the reader's pass over the tensor is saved.
struct RowVisitLink {
  std::function<void()> begin;  ///< before a forward's first row
  std::function<void(const float* row, int64_t n)> visit;  ///< any thread, any row order
  bool valid = false;  ///< set by the producer after visiting every row of a forward
};

/// Per-(image, channel) sums of output 0 (N, C, ...) of a producer's last
/// training forward, for the op reading it (executor fusion; see
/// Op::publishOutputRowSums).
struct RowSumsLink {
  std::vector<float> sums;  ///< [n * C + c] = detail::sumF over that row
  bool valid = false;       ///< set by the producer's training forward
};

class Op {
 public:
  virtual ~Op() = default;

  /// Computes outputs. `in[i]` is null for an omitted optional input. Each
  /// `out[i]` is a tensor owned by the executor: resize() it and fill it.
  /// In training mode, inputs listed by stateInputs() may be updated in place.
  virtual void forward(const std::vector<Tensor*>& in,
                       const std::vector<Tensor*>& out, RunContext& ctx) = 0;

  /// Computes input gradients. `dout[i]` is null when no gradient flows into
  /// output i (treat as zeros). `din[i]` is null when input i needs no
  /// gradient; otherwise resize it to the input's shape and overwrite it.
  virtual void backward(const std::vector<Tensor*>& in,
                        const std::vector<Tensor*>& out,
                        const std::vector<const Tensor*>& dout,
                        const std::vector<Tensor*>& din, RunContext& ctx);

  /// Inputs that training-mode forward updates in place (never differentiated).
  virtual std::vector<int> stateInputs() const { return {}; }
  /// Inputs that never receive gradients (shape tensors, labels, indices).
  virtual std::vector<int> nonDiffInputs() const { return {}; }
  /// False for ops without a backward (shape plumbing on constants).
  virtual bool differentiable() const { return true; }
  /// Whether backward reads the values of input `i` (not only its shape and
  /// dtype) when it computes the gradients of the inputs `grads` marks.
  /// false lets the executor free the tensor after its last forward reader;
  /// backward then gets Tensor::shapeOnly in its place. Default true.
  virtual bool backwardReadsInput(size_t /*i*/, const std::vector<bool>& /*grads*/) const {
    return true;
  }
  /// Whether backward reads the values of output `i`. Default true.
  virtual bool backwardReadsOutput(size_t /*i*/) const { return true; }

  /// True when the gradient of input `i` is a reduction over the batch that
  /// this op can complete over all ranks itself, exactly (exact_sum.h), when
  /// the input holds the same values on every rank (a weight).
  virtual bool reducesGradOverRanks(int i) const { return false; }
  /// Set by the executor: inputs whose gradient this op must reduce over all
  /// ranks (the mean over ranks, as the gradient reducer would) when
  /// RunContext::sync is set. The reducer then leaves those gradients alone.
  void setRankReducedInputs(std::vector<bool> inputs) { rank_reduced_ = std::move(inputs); }
  /// Set by the executor before each forward: where the samples of input
  /// `i` lie (rank_reduction/sample_groups.h), unknown when it cannot tell.
  /// A rank-reduced gradient groups its rows by them (same bits on any
  /// number of ranks either way).
  void setInputSamples(size_t i, const rank_reduction::SampleLayout& l) {
    if (input_samples_.size() <= i) input_samples_.resize(i + 1);
    input_samples_[i] = l;
  }

  /// Executor fusion: true when this op applies `e` to output 0 as it
  /// writes it from now on. Only ops whose backward never reads output 0
  /// may accept (then the fused Relu/Clip backward, reading the activated
  /// values as its input, masks exactly as on the raw ones).
  virtual bool fuseOutputActivation(const ActEpilogue&) { return false; }
  /// Executor fusion: true when this op, from now on, passes the gradient it
  /// writes for input 0 through `e`'s backward, evaluated on input 0's
  /// values (the output of that Relu/Clip, whose own backward the executor
  /// then skips); kind kNone turns it off.
  virtual bool maskInputGradient(const ActEpilogue&) { return false; }
  /// True when backward gives input 0 exactly output 0's gradient and no
  /// other input a gradient (a straight-through estimator): the executor then
  /// hands that gradient over instead of running backward.
  virtual bool backwardIsIdentity() const { return false; }
  /// Executor fusion: true when this op, from now on, computes max |output 0|
  /// in each training forward as it writes it and stores it in `*link`
  /// (valid false after other forwards); null turns it off.
  virtual bool publishOutputAbsMax(AbsMaxLink* /*link*/) { return false; }
  /// Executor fusion: true when this op, from now on, takes max |input 0|
  /// from `*link` (filled by input 0's producer) when it is valid instead of
  /// computing it; null turns it off.
  virtual bool readInputAbsMax(const AbsMaxLink* /*link*/) { return false; }
  /// Executor fusion: true when this op, from now on, computes the sums of
  /// output 0's rows (detail::sumF per image and channel) in each training
  /// forward as it writes them, into `*link`; null turns it off.
  virtual bool publishOutputRowSums(RowSumsLink* /*link*/) { return false; }
  /// Executor fusion: true when this op, from now on, takes input 0's row
  /// sums from `*link` when it is valid instead of computing them; null
  /// turns it off.
  virtual bool readInputRowSums(const RowSumsLink* /*link*/) { return false; }
  /// Executor fusion, for a Relu/Clip whose producer applies it, or an Add
  /// whose producer adds its bias: forward makes output 0 share input
  /// `input`'s storage instead of computing; backward is unchanged. False
  /// for other ops; `on` false undoes it.
  virtual bool forwardAsAlias(bool /*on*/, size_t /*input*/ = 0) { return false; }
  /// The executor tells each op whether its node ever runs backward (false:
  /// a frozen teacher's); forward may then skip what only backward reads.
  virtual void setBackwardNeeded(bool /*needed*/) {}
  /// Executor fusion: true when this op, from now on, adds `*bias` (1-D,
  /// read at each forward) along output 0's last axis as it writes it, with
  /// the bits of an Add after it (which then aliases output 0); null turns
  /// it off.
  virtual bool fuseOutputBias(const Tensor* /*bias*/) { return false; }
  /// True when backward, after the last forward, will not read output 0's
  /// gradient given which inputs need one (`need`, per input): then the
  /// executor computes that gradient only where something else needs it (a
  /// PACT on the image that clipped nothing: alpha's gradient is 0 whatever
  /// it is). `synced`: RunContext::sync is set (ranks may differ).
  virtual bool outputGradientUnused(const std::vector<bool>& /*need*/, bool /*synced*/) const {
    return false;
  }
  /// Executor fusion: true when this op, from now on, passes every row of
  /// output 0 to `link->visit` in each forward as it writes it (calling
  /// begin first, setting valid after); null turns it off. A producer may
  /// skip inference forwards, leaving valid false (Conv: the reader, PACT,
  /// reads rows in training forwards only).
  virtual bool visitOutputRows(RowVisitLink* /*link*/) { return false; }
  /// Executor fusion: true when this op fills `link`'s functions with the
  /// per-row work of its forward on input 0, and from now on takes the
  /// result from them when valid; `in` are its inputs as bound (stable
  /// addresses). Null turns it off.
  virtual bool readInputRowVisits(RowVisitLink* /*link*/,
                                  const std::vector<const Tensor*>& /*in*/) {
    return false;
  }
  /// Executor fusion: true when this op (PACT), from now on, leaves its clip
  /// to output 0's only reader: each forward makes output 0 share input 0's
  /// (unclipped) storage and fills `*link`; null turns it off.
  virtual bool handOutputClip(ClipLink* /*link*/) { return false; }
  /// Executor fusion: true when this op, from now on, clips input 0 as
  /// `*link` says (when valid) before using it; null turns it off.
  virtual bool readInputClip(const ClipLink* /*link*/) { return false; }
  /// Executor fusion, for a BatchNormalization that never uses batch
  /// statistics (slim_frozen): true, with `link`'s eps and act filled (the
  /// activation fused into it), when it can hand its work to its input's
  /// producer and then run as an alias (forwardAsAlias), outside backward.
  virtual bool frozenNorm(FrozenNormLink& /*link*/) const { return false; }
  /// Executor fusion: true when this op, from now on, applies `*link` to
  /// output 0 as it writes it (null turns it off). Only ever offered outside
  /// backward: the op's output then holds the norm's.
  virtual bool fuseOutputNorm(const FrozenNormLink* /*link*/) { return false; }

  /// Set by the registry: "<op_type> '<node name>'" for error messages.
  std::string label;

 protected:
  bool rankReduced(size_t i) const { return i < rank_reduced_.size() && rank_reduced_[i]; }
  rank_reduction::SampleLayout inputSamples(size_t i) const {
    return i < input_samples_.size() ? input_samples_[i] : rank_reduction::SampleLayout{};
  }
  /// The shift (FixedSum::setShift) of input `i`'s gradient sum: log2 of
  /// the world when finishSum will sum it over a power-of-two number of
  /// ranks, else 0. Set it on the FixedSum before adding the partials.
  int gradShift(size_t i, const RunContext& ctx) const {
    return ctx.sync && rankReduced(i) ? rank_reduction::gradShift(ctx.sync->size()) : 0;
  }
  /// Completes a per-rank fixed-point sum: over all ranks when input `i` is
  /// rank-reduced and ctx.sync is set, then divided by the number of ranks
  /// unless the partials were already converted as partial / world (the
  /// sum's shift, gradShift(i, ctx)). Writes the float result to out[0..n).
  void finishSum(size_t i, rank_reduction::FixedSum& sum, RunContext& ctx, float* out) const;
  /// sumPartials(partials, count, n, sum) then finishSum(i, sum, ctx, out),
  /// same bits, with sum's shift set to gradShift(i, ctx); without a sum
  /// over ranks each element's fixed-point sum is converted as soon as it
  /// is complete, so `sum` (16 bytes per element) is neither filled nor read.
  void finishPartials(size_t i, const float* partials, int64_t count, int64_t n,
                      rank_reduction::FixedSum& sum, RunContext& ctx, float* out) const;

 private:
  std::vector<bool> rank_reduced_;
  std::vector<rank_reduction::SampleLayout> input_samples_;
};

/// Base of the ops whose backward reads shapes only (views, transposes,
/// slices, concatenation, padding, pooling): the executor may free their
/// inputs and outputs after forward (Op::backwardReadsInput).
class ShapeOnlyBackwardOp : public Op {
 public:
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }
};

/// Throws ModelError "<label>: <what> of dtype D is not supported (float32
/// only)" unless `t` is float32 — kernels call it on their float inputs.
void requireF32(const Tensor& t, const std::string& label, const char* what = "input");

using OpFactory = std::function<std::unique_ptr<Op>(const Attrs&)>;

/// Op types by name (ONNX names, e.g. "Conv"; slimtrain's own ops use names
/// without an ONNX counterpart, e.g. "FakeQuantAbsMax").
class OpRegistry {
 public:
  /// The process-wide registry, with the built-in ops registered.
  static OpRegistry& get();

  void add(const std::string& type, OpFactory factory);
  /// Adds an op slimtrain's passes put into graphs (fake quantization, PACT,
  /// distillation losses): it runs like any op, but is not an ONNX op, so a
  /// model file naming it is refused as unsupported and `inspect --ops` does
  /// not list it.
  void addInternal(const std::string& type, OpFactory factory);
  bool has(const std::string& type) const;
  /// Registered and not internal: an op type a model file may contain.
  bool isModelOp(const std::string& type) const { return has(type) && !internal_.count(type); }
  /// Creates an op; throws ModelError naming type and node when unknown or when
  /// the attributes are invalid.
  std::unique_ptr<Op> create(const std::string& type, const Attrs& attrs,
                             const std::string& node_name) const;
  std::vector<std::string> types() const;
  /// types() without the internal ops (isModelOp), sorted.
  std::vector<std::string> modelTypes() const;

 private:
  std::vector<std::pair<std::string, OpFactory>> entries_;
  std::set<std::string> internal_;
};

// Registration functions of the built-in op families (one per source file).
void registerConvOps(OpRegistry& r);         // Conv
void registerGemmOps(OpRegistry& r);         // Gemm, MatMul
void registerNormOps(OpRegistry& r);         // BatchNormalization
void registerNormExtraOps(OpRegistry& r);    // LayerNormalization, InstanceNormalization
void registerConvTransposeOps(OpRegistry& r);  // ConvTranspose
void registerResizeOps(OpRegistry& r);       // Resize, Upsample
void registerPReluOps(OpRegistry& r);        // PRelu
void registerReduceMaxOps(OpRegistry& r);    // ReduceMax, ReduceMin, ArgMax, ArgMin
void registerPoolOps(OpRegistry& r);         // MaxPool, AveragePool, GlobalAveragePool
void registerActivationOps(OpRegistry& r);   // Relu, Clip, LeakyRelu, Sigmoid, ...
void registerElementwiseOps(OpRegistry& r);  // Add, Sub, Mul, Div (broadcasting)
void registerShapeOps(OpRegistry& r);        // Concat, Flatten, Reshape, Transpose, Identity, Dropout
void registerSoftmaxOps(OpRegistry& r);      // Softmax, LogSoftmax, SoftmaxCrossEntropyLoss
void registerMathOps(OpRegistry& r);         // Pow, Sqrt, Erf, Exp, Tanh, ReduceMean, ...
void registerTensorOps(OpRegistry& r);       // Constant, Shape, Gather, Squeeze, Unsqueeze, Pad, Cast
void registerSliceOps(OpRegistry& r);        // Slice, Split, Tile, Range
void registerLogicOps(OpRegistry& r);        // Equal, Less, ..., Not, And, Or, Xor, Where, Min, Max
void registerEinsumOps(OpRegistry& r);       // Einsum

}  // namespace slim::ops
