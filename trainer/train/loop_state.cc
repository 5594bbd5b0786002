// Capturing and restoring the training loop's state (see loop_state.h).
#include "trainer/train/loop_state.h"

#include <cmath>
#include <map>
#include <set>

namespace slim::train {

checkpoint::TrainingState captureState(const config::Config& cfg, const graph::Graph& g,
                                       const LoopState& ls, int64_t iter, int world,
                                       const std::vector<TrainHooks*>& hooks) {
  checkpoint::TrainingState st;
  st.step = iter;
  data::SamplerPosition pos = ls.sampler->position();
  st.epoch = pos.epoch;
  st.sample_offset = pos.sample_offset;
  st.world_size = world;
  st.seed = static_cast<uint64_t>(cfg.global.seed);
  st.config_yaml = config::resolvedYaml(cfg);
  for (const auto& name : g.trainable) st.params.tensors[name] = g.initializers.at(name);
  for (const auto& name : g.buffers) st.buffers.tensors[name] = g.initializers.at(name);
  for (auto& [name, t] : ls.optimizer->state()) st.optimizer.tensors[name] = t;
  st.optimizer.attrs["type"] = ls.optimizer->type();
  st.schedule.attrs["iteration"] = iter;
  st.schedule.attrs["lr_step"] = iter;  // LR schedules are pure functions of the step
  // Dropout randomness is derived from (seed, iteration, rank): no stream state.
  st.rng.attrs["dropout_stream"] = std::string("mix(seed, iteration, rank)");
  for (auto* h : hooks) h->saveState(st);
  return st;
}

void restoreState(const checkpoint::TrainingState& st, graph::Graph& g, LoopState& ls,
                  const std::vector<TrainHooks*>& hooks, const std::string& file) {
  restoreModelState(st, g, file);
  // Hooks keep their own optimizers' state under "<hook>/..." (e.g. "pact/").
  std::map<std::string, Tensor> main_opt;
  for (const auto& [name, t] : st.optimizer.tensors)
    if (name.rfind("pact/", 0) != 0) main_opt[name] = t;
  ls.optimizer->loadState(main_opt);
  ls.sampler->seek(st.epoch, st.sample_offset);
  for (auto* h : hooks) h->loadState(st);
}

bool allFinite(const Tensor& t) {
  if (t.dtype() != DType::kF32) return true;
  const float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

void restoreModelState(const checkpoint::TrainingState& st, graph::Graph& g,
                       const std::string& file) {
  auto copyGroup = [&](const checkpoint::Group& grp, const std::set<std::string>& names,
                       const char* what) {
    for (const auto& name : names) {
      auto it = grp.tensors.find(name);
      if (it == grp.tensors.end())
        SLIM_THROW(CheckpointError, file, ": ", what, " '", name,
                   "' of the model is missing from the checkpoint");
      Tensor& dst = g.initializers.at(name);
      if (it->second.shape() != dst.shape() || it->second.dtype() != dst.dtype())
        SLIM_THROW(CheckpointError, file, ": ", what, " '", name, "' has shape ",
                   shapeStr(it->second.shape()), " in the checkpoint, the model expects ",
                   shapeStr(dst.shape()));
      dst.copyFrom(it->second);
    }
  };
  copyGroup(st.params, g.trainable, "parameter");
  copyGroup(st.buffers, g.buffers, "buffer");
}

}  // namespace slim::train
