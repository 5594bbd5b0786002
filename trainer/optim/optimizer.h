// Optimizers with PaddlePaddle's update rules (paddle.optimizer.*), keyed by
// parameter name so their state can be checkpointed and restored bit-exactly.
//
//   SGD       p -= lr * g
//   Momentum  v = mu * v + g;  p -= lr * v            (use_nesterov:
//             p -= lr * (g + mu * v))
//   Adam      m = b1 m + (1-b1) g;  u = b2 u + (1-b2) g^2;
//             lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);
//             p -= lr_t * m / (sqrt(u) + eps * sqrt(1 - b2^t))
//             (Paddle's form; b1^t, b2^t are per-parameter float
//             accumulators that start at b1, b2 and are multiplied after
//             each step, exactly as Paddle's beta1_pow_acc/beta2_pow_acc)
//   AdamW     p -= lr * coeff * p, then Adam
//
// Weight decay: `weight_decay` is coupled L2 (g += wd * p, Paddle's L2Decay)
// for SGD, Momentum and Adam, decoupled (coeff above) for AdamW; `l1_decay`
// is coupled L1 (g += coeff * sign(p), Paddle's L1Decay).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::optim {

/// Plain description of an optimizer (the config layer maps YAML onto it).
struct OptimizerSpec {
  /// "SGD", "Momentum", "Adam" or "AdamW" (case-sensitive, Paddle's names).
  std::string type = "SGD";
  float momentum = 0.9f;      ///< Momentum's mu (Paddle default 0.9)
  bool use_nesterov = false;  ///< Momentum only
  float beta1 = 0.9f;         ///< Adam/AdamW
  float beta2 = 0.999f;       ///< Adam/AdamW
  float epsilon = 1e-8f;      ///< Adam/AdamW
  /// L2 coefficient (coupled), or AdamW's decoupled coeff. Unset: 0, except
  /// AdamW whose Paddle default is 0.01.
  std::optional<float> weight_decay;
  /// Coupled L1 coefficient (Paddle's L1Decay regularizer); 0 = off.
  float l1_decay = 0.0f;
};

/// One parameter to update in a batched step.
struct ParamRef {
  std::string name;
  Tensor* param;       ///< float32, updated in place
  const Tensor* grad;  ///< float32, same numel as param; read only
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// Updates one parameter in place. Creates its state (zeros) on first use.
  /// Does not advance stepCount(); use the batched step() for that.
  /// Throws ShapeError if grad/state do not match the parameter.
  /// @param name  parameter name (state key prefix)
  /// @param param float32 parameter, updated in place
  /// @param grad  float32 gradient, same numel
  /// @param lr    learning rate of this iteration
  void step(const std::string& name, Tensor& param, const Tensor& grad, float lr);

  /// Updates every parameter of `params` in order, then advances stepCount().
  /// @param params parameters with their gradients
  /// @param lr     learning rate of this iteration
  void step(const std::vector<ParamRef>& params, float lr);

  /// Number of batched steps taken (restored by loadState).
  int64_t stepCount() const { return steps_; }

  /// All state, bit-exact: "<param>/<slot>" tensors (e.g. "conv.w/moment1")
  /// plus scalar entries without '/' ("step", int64 shape {}). The returned
  /// tensors share storage with the optimizer; clone() to snapshot.
  std::map<std::string, Tensor> state() const;

  /// Replaces all state with `state` (as produced by state()); tensors are
  /// deep-copied. Throws CheckpointError on an unknown slot name, a missing
  /// "step" entry or a wrong dtype; shapes are checked on the next step().
  /// @param state map as returned by state()
  void loadState(const std::map<std::string, Tensor>& state);

  /// Paddle class name of this optimizer ("Adam", ...).
  virtual std::string type() const = 0;

 protected:
  /// @param l2 coupled L2 coefficient (g += l2 * p); 0 for AdamW
  /// @param l1 coupled L1 coefficient (g += l1 * sign(p))
  Optimizer(float l2, float l1) : l2_(l2), l1_(l1) {}

  /// Slot names this optimizer keeps per parameter, in a fixed order.
  virtual std::vector<std::string> slots() const = 0;
  /// The update itself: `slots` holds this parameter's state tensors in the
  /// order of slots(); `g` is the gradient after coupled decay.
  virtual void update(float* p, const float* g, int64_t n,
                      std::vector<Tensor*>& slots, float lr) = 0;
  /// Initial state of slot `slot` for `param`: zeros shaped like the
  /// parameter by default (Adam's beta pows are {1} tensors holding beta).
  virtual Tensor initSlot(const std::string& slot, const Tensor& param) const;

 private:
  float l2_;  // coupled L2 coefficient (0 for AdamW)
  float l1_;  // coupled L1 coefficient
  // Looks up (creating or, once after loadState, validating) the slots.
  void slotsFor(const std::string& name, const Tensor& param,
                std::vector<Tensor*>& out);

  std::map<std::string, Tensor> state_;  // "<param>/<slot>"
  std::map<std::string, bool> checked_;  // params whose loaded state fits
  std::vector<float> decayed_;           // scratch for g + decay terms
  int64_t steps_ = 0;
};

/// Builds the optimizer described by `spec`. Throws ConfigError for an
/// unknown type (listing the known ones) or out-of-range hyper-parameters.
/// @param spec the optimizer description
/// @return a fresh optimizer without state
std::unique_ptr<Optimizer> makeOptimizer(const OptimizerSpec& spec);

}  // namespace slim::optim
