// GMP ratio table and stepping, transcribed from PaddleSlim's
// GMPUnstructuredPruner (_prepare_training_hyper_parameters, step) with the
// same float expressions, so every table entry matches ACT bit for bit.
#include "trainer/compress/prune/gmp_ratio.h"

#include <algorithm>
#include <cmath>

#include "trainer/core/error.h"

namespace slim::compress {
namespace {

// Python's a % b for b > 0 (result in [0, b)).
int64_t pyMod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r < 0 ? r + b : r;
}

}  // namespace

GmpRatio::GmpRatio(const config::GmpSchedule& s, double target) : target_(target) {
  if (s.pruning_steps < 1)
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config.pruning_steps: expected >= 1, found ",
               s.pruning_steps);
  if (s.pruning_iterations < 1)
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config.pruning_iterations: expected >= 1, "
               "found ", s.pruning_iterations);
  if (s.resume_iteration < -1)
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config.resume_iteration: expected -1 or a "
               "value >= 0, found ", s.resume_iteration);
  const double pruning = static_cast<double>(s.pruning_iterations);
  const double steps = static_cast<double>(s.pruning_steps);
  period_ = static_cast<int64_t>(pruning / steps);
  if (period_ < 1)
    SLIM_THROW(ConfigError, "UnstructurePrune.gmp_config: pruning_iterations / pruning_steps "
               "must be > 10 (ACT's rule), found ", s.pruning_iterations, " / ",
               s.pruning_steps);

  const auto stable_n = static_cast<int64_t>(static_cast<double>(s.stable_iterations) /
                                             pruning * steps);
  const auto tuning_n = static_cast<int64_t>(static_cast<double>(s.tunning_iterations) /
                                             pruning * steps);
  table_.assign(static_cast<size_t>(std::max<int64_t>(stable_n, 0)), 0.0);
  for (int64_t i = 0; i < s.pruning_steps; ++i) {
    // ratio_tmp = ((i / steps) - 1.0) ** 3 + 1; Python's float ** is C pow().
    const double x = static_cast<double>(i) / steps - 1.0;
    const double r = std::pow(x, 3.0) + 1.0;
    table_.push_back(r * (target - s.initial_ratio) + s.initial_ratio);
  }
  table_.insert(table_.end(), static_cast<size_t>(std::max<int64_t>(tuning_n, 0)), target);

  // Fast-forward as ACT's constructor: for i in range(resume), every i with
  // i % P == 0 pops one entry; prune_once makes the first step() recompute.
  state_.cur_iteration = s.resume_iteration;
  if (s.resume_iteration > 0) {
    const int64_t consumed = (s.resume_iteration - 1) / period_ + 1;
    const auto n = static_cast<int64_t>(table_.size());
    state_.table_index = std::min(consumed, n);
    state_.ratio = table_[static_cast<size_t>(state_.table_index - 1)];
    state_.prune_once = true;
  }
}

bool GmpRatio::step() {
  const double before = state_.ratio;
  if (pyMod(state_.cur_iteration, period_) == 0) {
    if (state_.table_index < static_cast<int64_t>(table_.size()))
      state_.ratio = table_[static_cast<size_t>(state_.table_index++)];
    else
      state_.ratio = target_;
  }
  const bool recompute = state_.ratio != before || state_.prune_once;
  state_.prune_once = false;
  state_.cur_iteration += 1;
  return recompute;
}

double GmpRatio::ratioAt(int64_t cur) const {
  SLIM_ENFORCE_GE(cur, int64_t{-1}, "GmpRatio::ratioAt: counter out of range");
  if (cur < 0) return 0.0;
  const int64_t consumed = cur / period_ + 1;
  if (consumed <= static_cast<int64_t>(table_.size()))
    return table_[static_cast<size_t>(consumed - 1)];
  return target_;
}

void GmpRatio::setState(const PrunerState& s) {
  if (s.table_index < 0 || s.table_index > static_cast<int64_t>(table_.size()))
    SLIM_THROW(CheckpointError, "GMP schedule state: table_index ", s.table_index,
               " outside [0, ", table_.size(), "] of this config's ratio table (was the "
               "gmp_config changed since the checkpoint?)");
  if (s.cur_iteration < -1)
    SLIM_THROW(CheckpointError, "GMP schedule state: cur_iteration ", s.cur_iteration,
               " < -1");
  state_ = s;
}

}  // namespace slim::compress
