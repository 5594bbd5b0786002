// Config -> run pieces.
#include "trainer/train/setup.h"

#include <algorithm>

#include "trainer/data/h5_dataset.h"
#include "trainer/data/idx.h"
#include "trainer/models/load.h"

namespace slim::train {

data::Dataset loadData(const config::Data& d, bool eval) {
  const std::string& images = eval ? d.eval_images : d.train_images;
  const std::string& labels = eval ? d.eval_labels : d.train_labels;
  if (images.empty()) return data::Dataset{};
  data::Dataset ds;
  if (d.format == "hdf5") {
    ds = data::loadHdf5(images);
  } else {
    ds = data::loadIdx(images, labels);
  }
  ds.mean.assign(d.mean.begin(), d.mean.end());
  ds.std.assign(d.std_dev.begin(), d.std_dev.end());
  data::validate(ds);
  return ds;
}

graph::Graph loadConfiguredModel(const config::Global& g) {
  if (!g.model.empty()) return models::loadModel(g.model, "", static_cast<uint64_t>(g.seed));
  if (g.model_dir.empty() && g.model_filename.empty())
    SLIM_THROW(ConfigError, "Global: set `model` (e.g. zoo:mobilenet_tiny) or `model_dir`");
  return models::loadModelFrom(g.model_dir, g.model_filename, g.params_filename,
                               static_cast<uint64_t>(g.seed));
}

GraphIo addClassificationLoss(graph::Graph& g) {
  if (g.inputs.size() != 1 || g.outputs.size() != 1)
    SLIM_THROW(ModelError, "model '", g.name, "' must have one input and one output to be "
               "trained as a classifier (has ", g.inputs.size(), " inputs, ", g.outputs.size(),
               " outputs)");
  GraphIo io;
  io.image = g.inputs[0].name;
  io.logits = g.outputs[0].name;
  io.label = g.uniqueName("label");
  io.loss = g.uniqueName("loss");
  g.inputs.push_back({io.label, {-1}, DType::kI64});
  g.nodes.push_back(graph::Node{g.uniqueName("cross_entropy"), "SoftmaxCrossEntropyLoss",
                                {io.logits, io.label}, {io.loss}, {}});
  g.outputs.push_back({io.loss, {}, DType::kF32});
  return io;
}

optim::OptimizerSpec toOptimizerSpec(const config::Optimizer& o) {
  optim::OptimizerSpec s;
  s.type = o.type;
  s.momentum = static_cast<float>(o.momentum);
  s.use_nesterov = o.use_nesterov;
  s.beta1 = static_cast<float>(o.beta1);
  s.beta2 = static_cast<float>(o.beta2);
  s.epsilon = static_cast<float>(o.epsilon);
  s.weight_decay = static_cast<float>(o.weight_decay);
  return s;
}

optim::LrSpec toLrSpec(const config::LrSchedule& c) {
  optim::LrSpec s;
  s.type = c.type;
  s.learning_rate = c.learning_rate;
  s.boundaries = c.boundaries;
  s.values = c.values;
  s.T_max = c.T_max;
  s.eta_min = c.eta_min;
  s.warmup_steps = c.warmup_steps;
  s.start_lr = c.start_lr;
  s.end_lr = c.end_lr;
  s.gamma = c.gamma;
  if (!c.after_warmup.empty()) s.inner = std::make_shared<optim::LrSpec>(toLrSpec(c.after_warmup[0]));
  return s;
}

int64_t totalIterations(const config::TrainConfig& t, int64_t batches_per_epoch) {
  int64_t by_epochs = t.epochs ? *t.epochs * batches_per_epoch : 0;
  if (t.train_iter && t.epochs) return std::min(*t.train_iter, by_epochs);
  if (t.train_iter) return *t.train_iter;
  return by_epochs;
}

}  // namespace slim::train
