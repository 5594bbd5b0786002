// ACT's GMP ratio schedule (GMPUnstructuredPruner, act-reference §3.4): the
// ratio table, the period, the -1 start shift, "recompute masks only when the
// ratio changes" and resume_iteration fast-forward, plus the scalar state a
// checkpoint needs to continue it exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/config/config.h"

namespace slim::compress {

/// Scalar pruning state saved in checkpoints (/schedule attrs).
struct PrunerState {
  /// ACT's cur_iteration: the counter the next step() will look at (starts at
  /// resume_iteration, +1 per step()).
  int64_t cur_iteration = 0;
  /// Ratio in force (the one the current masks were computed with, or will
  /// be on the next recompute when prune_once is set).
  double ratio = 0.0;
  /// Number of table entries consumed so far (next entry's index).
  int64_t table_index = 0;
  /// ACT's prune_once: recompute masks on the next step() even if the ratio
  /// did not change (set by a resume_iteration fast-forward).
  bool prune_once = false;
  bool operator==(const PrunerState&) const = default;
};

/// The GMP ratio sequence and its position.
class GmpRatio {
 public:
  /// Builds the table (once, as ACT) and fast-forwards to
  /// sched.resume_iteration:
  ///  period P = int(pruning_iterations / pruning_steps);
  ///  entries: int(stable/pruning·steps) × 0.0, then
  ///  r_i = s_i·(target − initial) + initial with s_i = (i/steps − 1)^3 + 1,
  ///  i = 0..steps−1, then int(tunning/pruning·steps) × target.
  /// @param sched  resolved schedule (config::resolveGmp)
  /// @param target final ratio (UnstructurePrune.ratio), in [0, 1)
  /// @throws ConfigError when P < 1 (ACT requires pruning/steps > 10),
  ///         pruning_steps < 1 or resume_iteration < -1
  GmpRatio(const config::GmpSchedule& sched, double target);

  /// One call per training iteration, after the optimizer step (ACT's
  /// pruner.step()): when cur_iteration mod P == 0 (Python modulo) the next
  /// entry becomes the ratio (target once the table is exhausted); then
  /// cur_iteration += 1.
  /// @return true when masks must be recomputed: the ratio changed or
  ///         prune_once was set (it is cleared)
  bool step();

  /// The ratio in force once step() has processed counter value `cur`
  /// (cur >= -1; -1 gives 0.0). Pure function of the table: entries consumed
  /// = cur / P + 1 for cur >= 0, whatever resume_iteration was.
  double ratioAt(int64_t cur) const;

  /// The full sequence (stable, pruning, tuning entries), in order.
  const std::vector<double>& table() const { return table_; }
  /// Iterations each entry lasts.
  int64_t period() const { return period_; }
  double target() const { return target_; }
  /// Current ratio in force.
  double ratio() const { return state_.ratio; }

  const PrunerState& state() const { return state_; }
  /// Restores a position saved from state() (e.g. from a checkpoint).
  /// @throws CheckpointError when table_index is outside [0, table size]
  void setState(const PrunerState& s);

 private:
  std::vector<double> table_;
  int64_t period_ = 1;
  double target_ = 0.0;
  PrunerState state_;
};

}  // namespace slim::compress
