// Turning a validated Config into the pieces of a run: data sets, the model
// graph, the training graph (model + loss), optimizer and LR schedule.
// Everything here is deterministic and runs identically on every rank before
// any collective (SEMANTICS.md §3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "trainer/config/config.h"
#include "trainer/data/dataset.h"
#include "trainer/graph/graph.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizer.h"

namespace slim::train {

/// Loads Global.Data's train split (eval=false) or eval split (eval=true).
/// Returns an empty Dataset when the eval files are not configured.
data::Dataset loadData(const config::Data& d, bool eval);

/// The model named by Global: `model` (zoo:NAME) or model_dir/model_filename.
graph::Graph loadConfiguredModel(const config::Global& g);

/// Names of the interesting tensors of a classifier training graph.
struct GraphIo {
  std::string image;   ///< graph input fed with images
  std::string label;   ///< graph input fed with int64 labels
  std::string logits;  ///< model output [N, classes]
  std::string loss;    ///< scalar objective
};

/// Adds a label input and SoftmaxCrossEntropyLoss(logits, label) -> "loss" to
/// a classifier graph with one image input and one logits output.
GraphIo addClassificationLoss(graph::Graph& g);

optim::OptimizerSpec toOptimizerSpec(const config::Optimizer& o);
optim::LrSpec toLrSpec(const config::LrSchedule& s);

/// Total training iterations: train_iter if set (capped by epochs when both
/// are set), else epochs x batches_per_epoch.
int64_t totalIterations(const config::TrainConfig& t, int64_t batches_per_epoch);

}  // namespace slim::train
