// LR schedules (formulas in lr_schedule.h, after paddle.optimizer.lr).
#include "trainer/optim/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "trainer/core/error.h"

namespace slim::optim {

PiecewiseDecay::PiecewiseDecay(std::vector<int64_t> boundaries,
                               std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  if (values_.size() != boundaries_.size() + 1)
    SLIM_THROW(ConfigError, "PiecewiseDecay: needs len(values) == len(boundaries)",
               " + 1, got ", values_.size(), " values and ", boundaries_.size(),
               " boundaries");
  for (size_t i = 1; i < boundaries_.size(); ++i)
    if (boundaries_[i] <= boundaries_[i - 1])
      SLIM_THROW(ConfigError, "PiecewiseDecay: boundaries must increase, got ",
                 boundaries_[i - 1], " then ", boundaries_[i]);
}

float PiecewiseDecay::lr(int64_t step) const {
  for (size_t i = 0; i < boundaries_.size(); ++i)
    if (step < boundaries_[i]) return static_cast<float>(values_[i]);
  return static_cast<float>(values_.back());
}

CosineAnnealingDecay::CosineAnnealingDecay(double base_lr, int64_t T_max,
                                           double eta_min)
    : base_(base_lr), eta_min_(eta_min), t_max_(T_max) {
  if (t_max_ <= 0)
    SLIM_THROW(ConfigError, "CosineAnnealingDecay: T_max must be > 0, got ", T_max);
}

float CosineAnnealingDecay::lr(int64_t step) const {
  const double c = std::cos(std::numbers::pi * static_cast<double>(step) /
                            static_cast<double>(t_max_));
  return static_cast<float>(eta_min_ + (base_ - eta_min_) * (1.0 + c) / 2.0);
}

LinearWarmup::LinearWarmup(std::unique_ptr<LrSchedule> inner,
                           int64_t warmup_steps, double start_lr, double end_lr)
    : inner_(std::move(inner)), warmup_(warmup_steps), start_(start_lr),
      end_(end_lr) {
  if (warmup_ <= 0)
    SLIM_THROW(ConfigError, "LinearWarmup: warmup_steps must be > 0, got ",
               warmup_steps);
  SLIM_ENFORCE(inner_ != nullptr, "LinearWarmup: no schedule after warm-up");
}

float LinearWarmup::lr(int64_t step) const {
  if (step < warmup_)
    return static_cast<float>((end_ - start_) * static_cast<double>(step) /
                                  static_cast<double>(warmup_) +
                              start_);
  return inner_->lr(step - warmup_);
}

ExponentialDecay::ExponentialDecay(double base_lr, double gamma)
    : base_(base_lr), gamma_(gamma) {
  if (!(gamma_ > 0.0))
    SLIM_THROW(ConfigError, "ExponentialDecay: gamma must be > 0, got ", gamma);
}

float ExponentialDecay::lr(int64_t step) const {
  return static_cast<float>(base_ * std::pow(gamma_, static_cast<double>(step)));
}

std::unique_ptr<LrSchedule> makeLrSchedule(const LrSpec& s) {
  if (s.type == "Constant") return std::make_unique<ConstantLr>(s.learning_rate);
  if (s.type == "PiecewiseDecay")
    return std::make_unique<PiecewiseDecay>(s.boundaries, s.values);
  if (s.type == "CosineAnnealingDecay")
    return std::make_unique<CosineAnnealingDecay>(s.learning_rate, s.T_max, s.eta_min);
  if (s.type == "ExponentialDecay")
    return std::make_unique<ExponentialDecay>(s.learning_rate, s.gamma);
  if (s.type == "LinearWarmup") {
    std::unique_ptr<LrSchedule> inner =
        s.inner ? makeLrSchedule(*s.inner)
                : std::make_unique<ConstantLr>(s.learning_rate);
    return std::make_unique<LinearWarmup>(std::move(inner), s.warmup_steps,
                                          s.start_lr, s.end_lr);
  }
  SLIM_THROW(ConfigError, "learning_rate type '", s.type, "' is not supported",
             " (known: Constant, PiecewiseDecay, CosineAnnealingDecay,",
             " LinearWarmup, ExponentialDecay)");
}

}  // namespace slim::optim
