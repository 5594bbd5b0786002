// Sharded evaluation: each rank runs a disjoint contiguous slice of the eval
// set; integer counts (correct samples, confusion matrices, fixed-point
// losses) are summed over ranks, so every rank returns the same, exact
// score whatever the number of ranks. What is scored follows the model's
// output and the labels (eval_metric.h): top-1, mIoU + pixel accuracy, or
// the distillation loss for data without labels.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>
#include <map>
#include <string>
#include <utility>

#include "comm/communicator.h"
#include "trainer/data/loader.h"
#include "trainer/graph/executor.h"
#include "trainer/train/eval_metric.h"
#include "trainer/train/metrics.h"

namespace slim::train {

struct EvalResult {
  Metric metric = Metric::kTop1;  ///< what value() is
  /// top1: correct / total samples. Kept for classification (report.json's
  /// top1 keys); NaN for other metrics.
  double top1 = 0;
  double miou = NAN;          ///< segmentation: mean IoU (ConfusionMatrix::meanIou)
  double pixel_acc = NAN;     ///< segmentation: correct / total pixels
  double distill_loss = NAN;  ///< unlabelled: mean per-sample output MSE vs the teacher
  /// Classification: correct and total samples; segmentation: correct and
  /// total scored pixels (ignored ones left out); distill_loss: samples.
  int64_t correct = 0;
  int64_t total = 0;
  ConfusionMatrix confusion;  ///< segmentation only
  /// SIGUSR1/SIGTERM arrived during the pass on some rank: the counts are
  /// partial, and every rank knows it.
  bool stopped = false;
  /// The chosen metric's value.
  double value() const;
};

/// What to feed and read when evaluating a graph.
struct EvalSpec {
  EvalSpec() = default;
  EvalSpec(std::string image, std::string label, std::string out, int64_t b, int w)
      : image_input(std::move(image)), label_input(std::move(label)), logits(std::move(out)),
        batch(b), workers(w) {}
  std::string image_input;   ///< graph input receiving the images
  std::string label_input;   ///< graph input receiving labels ("" if none)
  std::string logits;        ///< output scored (argmax per sample or per pixel)
  int64_t batch = 256;       ///< per-rank eval batch
  int workers = 1;           ///< decode workers (data::decodeWorkers)
  std::string metric = "auto";  ///< TrainConfig.eval_metric
  /// The teacher's output distill_loss compares every target with ("" when
  /// there is no teacher: distill_loss is NaN, the predictions still go to
  /// the sink).
  std::string reference;
};

/// Called with every evaluated batch (this rank's, in order) and the
/// predicted class of each sample, or of each pixel (b, h, w order) of a
/// segmentation output: what the ONNX Runtime check compares.
using PredictionSink =
    std::function<void(const data::Batch& batch, const std::vector<int64_t>& predicted)>;

/// The metric `spec` asks for on `ds` (chooseMetric with ds's labels).
Metric metricFor(const EvalSpec& spec, const data::Dataset& ds);

/// Evaluates `spec.logits` of `ex` (inference mode) on `ds`; each rank runs
/// its contiguous shard (data::evalShard).
/// @param comm sums the counts over ranks (world 1 short-circuits)
/// @param sink if set, receives every batch with its predictions
EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm, const PredictionSink& sink = {});

/// One pass over `ds` scoring several outputs of the same forward (student
/// and teacher): results in the order of `logits`; `sink` gets the
/// predictions of logits[0].
std::vector<EvalResult> evaluateMany(graph::Executor& ex, const EvalSpec& spec,
                                     const std::vector<std::string>& logits,
                                     const data::Dataset& ds, comm::Communicator& comm,
                                     const PredictionSink& sink = {});

/// Adds r's scores to a metrics line or report: prefix + "top1" for
/// classification, prefix + "miou" and prefix + "pixel_acc" for
/// segmentation, prefix + "distill_loss" for unlabelled data.
void addEvalFields(JsonObject& out, const std::string& prefix, const EvalResult& r);

/// Index of the largest of `n` values (first on ties).
int64_t argmax(const float* v, int64_t n);

}  // namespace slim::train
