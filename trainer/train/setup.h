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
#include "trainer/data/image_transform.h"
#include "trainer/graph/graph.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizer.h"

namespace slim::train {

/// Opens Global.Data's train split (eval=false: the training transform,
/// keyed by Global.seed) or eval split (eval=true: the evaluation
/// transform). Returns an empty Dataset when the eval split is not
/// configured. Only indexes are read here; pixels are read per batch.
data::Dataset loadData(const config::Global& g, bool eval);

/// The image transform Global.Data describes (list, imagefolder) for the
/// training (eval=false) or evaluation split.
data::ImageTransform imageTransform(const config::Data& d, bool eval);

/// Throws DataError naming where the largest label is written when it is
/// not below `classes` (the model's output width; <= 0 skips the check).
void checkLabels(const data::Dataset& ds, int64_t classes, const std::string& model);

/// Throws DataError when the data set's samples do not fit the model's
/// first input: int64 token ids (N, T) for a float image input or the other
/// way round, or token ids of another length T than a fixed one the input
/// declares. The message names the file and dataset ('x'), the input, and
/// the expected and found types and shapes.
void checkInputData(const data::Dataset& ds, const graph::Graph& model);

/// Classes of a classifier or segmentation net: dim 1 of its first output
/// when that is (N, K) or (N, K, H, W) with K known, else 0 (unknown: no
/// label check).
int64_t modelClasses(const graph::Graph& g);

/// Throws ConfigError when Global.input_name is set and names no input of
/// `model` (listing its inputs).
void checkInputName(const config::Global& g, const graph::Graph& model);

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
/// a classifier graph with one image input and one logits output; for a
/// (N, classes, H, W) output the labels are (N, H, W) masks and pixels
/// labelled 255 are ignored.
GraphIo addClassificationLoss(graph::Graph& g);

optim::OptimizerSpec toOptimizerSpec(const config::Optimizer& o);
optim::LrSpec toLrSpec(const config::LrSchedule& s);

/// Total training iterations: train_iter if set (capped by epochs when both
/// are set), else epochs x batches_per_epoch.
int64_t totalIterations(const config::TrainConfig& t, int64_t batches_per_epoch);

}  // namespace slim::train
