// BestState (see best_state.h).
#include "trainer/train/best_state.h"

#include <cmath>

#include "trainer/core/error.h"
#include "trainer/core/log.h"
#include "trainer/train/eval_metric.h"

namespace slim::train {

namespace {
constexpr const char* kPrefix = "best/";

// The field of EvalResult that value() reads for `m`.
double& valueField(EvalResult& r, Metric m) {
  switch (m) {
    case Metric::kTop1: return r.top1;
    case Metric::kMiou: return r.miou;
    case Metric::kPixelAcc: return r.pixel_acc;
    case Metric::kDistillLoss: return r.distill_loss;
  }
  return r.top1;
}
}  // namespace

void BestState::offer(const EvalResult& r, int64_t iter, const graph::Graph& g) {
  last_eval_iter_ = iter;
  if (iter_ >= 0 && !isBetter(r.metric, r.value(), eval_.value())) return;
  eval_ = r;
  iter_ = iter;
  if (!keep_weights_) return;
  for (const auto* names : {&g.trainable, &g.buffers})
    for (const auto& n : *names) weights_[n] = g.initializers.at(n).clone();
}

void BestState::save(checkpoint::TrainingState& st) const {
  auto& attrs = st.schedule.attrs;
  attrs["best_iter"] = iter_;
  attrs["last_eval_iter"] = last_eval_iter_;
  if (iter_ < 0) return;
  attrs["best_metric"] = std::string(metricName(eval_.metric));
  attrs["best_value"] = eval_.value();
  for (const auto& [name, t] : weights_) st.schedule.tensors[kPrefix + name] = t;
}

void BestState::load(const checkpoint::TrainingState& st, const graph::Graph& g,
                     const std::string& file) {
  const auto& attrs = st.schedule.attrs;
  auto intAttr = [&](const char* key, int64_t fallback) {
    auto it = attrs.find(key);
    if (it == attrs.end()) return fallback;
    const int64_t* v = std::get_if<int64_t>(&it->second);
    if (v == nullptr)
      SLIM_THROW(CheckpointError, file, ": schedule attribute '", key, "' is not an integer");
    return *v;
  };
  iter_ = intAttr("best_iter", -1);
  last_eval_iter_ = intAttr("last_eval_iter", -1);
  weights_.clear();
  eval_ = EvalResult();
  if (iter_ < 0) return;
  auto m = attrs.find("best_metric");
  auto v = attrs.find("best_value");
  const std::string* name = m == attrs.end() ? nullptr : std::get_if<std::string>(&m->second);
  const double* value = v == attrs.end() ? nullptr : std::get_if<double>(&v->second);
  if (name == nullptr || value == nullptr || !parseMetricName(*name, &eval_.metric))
    SLIM_THROW(CheckpointError, file, ": schedule/best_iter is ", iter_,
               " but best_metric/best_value are missing or malformed");
  valueField(eval_, eval_.metric) = *value;
  const size_t plen = std::string(kPrefix).size();
  for (const auto& [key, t] : st.schedule.tensors) {
    if (key.compare(0, plen, kPrefix) != 0) continue;
    const std::string n = key.substr(plen);
    auto it = g.initializers.find(n);
    if (it == g.initializers.end() || it->second.shape() != t.shape() ||
        it->second.dtype() != t.dtype())
      SLIM_THROW(CheckpointError, file, ": schedule/", key, " (", shapeStr(t.shape()),
                 ") matches no parameter or buffer of the model of that shape");
    weights_[n] = t;
  }
  if (keep_weights_ && weights_.empty())
    log::warn0(file, ": the checkpoint keeps no weights of its best evaluation (iteration ", iter_,
               "); the export will hold the final weights");
}

void BestState::restoreInto(graph::Graph& g) const {
  for (const auto& [name, t] : weights_) g.initializers.at(name).copyFrom(t);
}

}  // namespace slim::train
