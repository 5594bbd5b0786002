// What an evaluation scores, chosen from the model's output and the labels
// (DATA.md, "Evaluation metrics"):
//  - top1: (N, classes) outputs with (N) class labels;
//  - miou (and pixel_acc): (N, classes, H, W) outputs with (N, H, W) masks,
//    pixels labelled data::kIgnoreLabel (255) left out, as torchvision's and
//    PaddleSeg's segmentation metrics do;
//  - distill_loss: data without labels; the mean over samples of the mean
//    squared difference between the student's and the teacher's outputs
//    (lower is better).
// Every count is an integer and every per-sample loss is turned into a
// fixed-point integer before it is summed, so the totals summed over ranks
// are exact: the same on any number of ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::train {

enum class Metric { kTop1, kMiou, kPixelAcc, kDistillLoss };

/// "top1", "miou", "pixel_acc", "distill_loss": the names report.json,
/// metrics.jsonl and TrainConfig.eval_metric use.
const char* metricName(Metric m);
/// The Metric named `name` (metricName's spelling); false for any other
/// string ("auto" included).
bool parseMetricName(const std::string& name, Metric* m);
/// A human label for pages and logs ("top-1", "mIoU", ...).
const char* metricLabel(Metric m);
/// False for distill_loss (lower is better).
bool higherIsBetter(Metric m);
/// True when `a` is a better score than `b` under `m`.
bool isBetter(Metric m, double a, double b);

/// What the data set can be scored with.
struct LabelKind {
  bool labelled = true;  ///< false: no labels (HDF5 with `x` only)
  bool masks = false;    ///< (N, H, W) masks rather than (N) classes
};

/// The metric for `labels` under TrainConfig.eval_metric `requested`
/// ("auto" or a metric name). Throws ConfigError naming the key when the
/// requested metric needs labels the data do not have (`data` names them)
/// or labels of the other kind.
Metric chooseMetric(const std::string& requested, const LabelKind& labels,
                    const std::string& data);

/// A classes x classes confusion matrix of integer pixel counts, indexed
/// [label * classes + predicted]. Matrices of disjoint shards add up exactly.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes = 0);
  int64_t classes() const { return classes_; }
  /// Counts n (label, prediction) pairs; labels equal to data::kIgnoreLabel
  /// are skipped. Returns the index of the first label outside
  /// [0, classes) that is not ignored, or -1 (nothing is counted then).
  int64_t add(const int64_t* labels, const int64_t* predicted, int64_t n);
  /// Grows the matrix to `classes` (keeping the counts): ranks agree on the
  /// largest class count before summing.
  void resize(int64_t classes);
  std::vector<int64_t>& counts() { return counts_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  /// Pixels counted (not ignored).
  int64_t total() const;
  /// Correctly predicted pixels (the diagonal).
  int64_t correct() const;
  /// Per class IoU = TP / (TP + FP + FN); NaN for a class that is neither in
  /// the labels nor predicted.
  std::vector<double> iou() const;
  /// Mean of iou() over the classes that have one (NaN when none).
  double meanIou() const;
  /// correct() / total() (NaN when nothing was counted).
  double pixelAccuracy() const;

 private:
  int64_t classes_ = 0;
  std::vector<int64_t> counts_;
};

/// Predicted class of every sample of a (B, classes) output, or of every
/// pixel of a (B, classes, H, W) output (argmax over dim 1, first on ties),
/// in (b, h, w) order. Other ranks: one argmax per sample over the rest.
void predictions(const Tensor& y, std::vector<int64_t>* pred);

/// Fixed-point units per 1.0 of a per-sample loss summed into an integer.
constexpr double kLossUnits = 16777216.0;  // 2^24
/// mean((s - t)^2) over the values of sample b of two same-shape outputs,
/// in kLossUnits, rounded to the nearest integer; -1 when it is not finite
/// or too large to sum (>= 2^50 units).
int64_t sampleSquaredError(const Tensor& student, const Tensor& teacher, int64_t b);

}  // namespace slim::train
