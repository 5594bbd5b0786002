// Learning-rate schedules as paddle.optimizer.lr.*, stepped once per
// training iteration. Each is a pure function of the iteration index
// (0 for the first iteration, which uses the initial LR, as in ACT), so the
// whole schedule "state" is the iteration counter the trainer checkpoints.
// Values are computed in double (Python floats in Paddle) and returned as
// float.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slim::optim {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  /// Learning rate of iteration `step` (>= 0).
  /// @param step 0-based iteration index (Paddle's last_epoch)
  /// @return the learning rate
  virtual float lr(int64_t step) const = 0;
};

/// Plain description of a schedule (the config layer maps YAML onto it).
/// Field names follow Paddle's constructor arguments.
struct LrSpec {
  /// Constant | PiecewiseDecay | CosineAnnealingDecay | LinearWarmup |
  /// ExponentialDecay.
  std::string type = "Constant";
  /// Constant value; base LR of CosineAnnealingDecay / ExponentialDecay;
  /// LinearWarmup's LR after warm-up when `inner` is null.
  double learning_rate = 0.02;
  std::vector<int64_t> boundaries;  ///< PiecewiseDecay, increasing
  std::vector<double> values;       ///< PiecewiseDecay, boundaries.size() + 1
  int64_t T_max = 0;                ///< CosineAnnealingDecay (> 0)
  double eta_min = 0.0;             ///< CosineAnnealingDecay
  int64_t warmup_steps = 0;         ///< LinearWarmup (> 0)
  double start_lr = 0.0;            ///< LinearWarmup
  double end_lr = 0.0;              ///< LinearWarmup
  double gamma = 0.0;               ///< ExponentialDecay (> 0)
  /// LinearWarmup only: the schedule that runs after warm-up (Paddle's
  /// `learning_rate` given as an LRScheduler). Null: constant learning_rate.
  std::shared_ptr<LrSpec> inner;
};

/// Always `value`.
class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(double value) : value_(value) {}
  float lr(int64_t) const override { return static_cast<float>(value_); }

 private:
  double value_;
};

/// values[i] for the first i with step < boundaries[i]; values.back() after
/// the last boundary.
class PiecewiseDecay : public LrSchedule {
 public:
  /// Throws ConfigError unless values.size() == boundaries.size() + 1 and
  /// boundaries increase strictly.
  PiecewiseDecay(std::vector<int64_t> boundaries, std::vector<double> values);
  float lr(int64_t step) const override;

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};

/// eta_min + (base - eta_min) * (1 + cos(pi * step / T_max)) / 2.
/// Paddle's step() uses a recursive form whose exact-arithmetic value is this
/// closed form for every step (Paddle itself uses the closed form when a step
/// is given explicitly, e.g. inside LinearWarmup). Past T_max the cosine is
/// not clamped: the LR rises again towards base over the next T_max steps
/// (period 2*T_max), exactly as Paddle's recursion does.
class CosineAnnealingDecay : public LrSchedule {
 public:
  /// Throws ConfigError unless T_max > 0.
  CosineAnnealingDecay(double base_lr, int64_t T_max, double eta_min);
  float lr(int64_t step) const override;

 private:
  double base_, eta_min_;
  int64_t t_max_;
};

/// start_lr + (end_lr - start_lr) * step / warmup_steps while
/// step < warmup_steps; afterwards inner->lr(step - warmup_steps).
class LinearWarmup : public LrSchedule {
 public:
  /// Throws ConfigError unless warmup_steps > 0 and inner is set.
  LinearWarmup(std::unique_ptr<LrSchedule> inner, int64_t warmup_steps,
               double start_lr, double end_lr);
  float lr(int64_t step) const override;

 private:
  std::unique_ptr<LrSchedule> inner_;
  int64_t warmup_;
  double start_, end_;
};

/// base * gamma^step.
class ExponentialDecay : public LrSchedule {
 public:
  /// Throws ConfigError unless gamma > 0.
  ExponentialDecay(double base_lr, double gamma);
  float lr(int64_t step) const override;

 private:
  double base_, gamma_;
};

/// Builds the schedule described by `spec` (recursively for LinearWarmup's
/// inner schedule). Throws ConfigError for an unknown type, listing the
/// known ones, or invalid fields.
/// @param spec the schedule description
/// @return the schedule
std::unique_ptr<LrSchedule> makeLrSchedule(const LrSpec& spec);

}  // namespace slim::optim
