// Metrics: choice, confusion matrix, per-pixel predictions, exact losses.
#include "trainer/train/eval_metric.h"

#include <cmath>
#include <limits>

#include "trainer/core/error.h"
#include "trainer/data/source.h"

namespace slim::train {

const char* metricName(Metric m) {
  switch (m) {
    case Metric::kTop1: return "top1";
    case Metric::kMiou: return "miou";
    case Metric::kPixelAcc: return "pixel_acc";
    case Metric::kDistillLoss: return "distill_loss";
  }
  return "?";
}

const char* metricLabel(Metric m) {
  switch (m) {
    case Metric::kTop1: return "top-1";
    case Metric::kMiou: return "mIoU";
    case Metric::kPixelAcc: return "pixel accuracy";
    case Metric::kDistillLoss: return "distillation loss";
  }
  return "?";
}

bool higherIsBetter(Metric m) { return m != Metric::kDistillLoss; }

bool isBetter(Metric m, double a, double b) { return higherIsBetter(m) ? a > b : a < b; }

bool parseMetricName(const std::string& name, Metric* m) {
  for (Metric k : {Metric::kTop1, Metric::kMiou, Metric::kPixelAcc, Metric::kDistillLoss})
    if (name == metricName(k)) {
      *m = k;
      return true;
    }
  return false;
}

Metric chooseMetric(const std::string& requested, const LabelKind& labels,
                    const std::string& data) {
  Metric m;
  if (requested == "auto" || requested.empty())
    m = !labels.labelled ? Metric::kDistillLoss : labels.masks ? Metric::kMiou : Metric::kTop1;
  else if (!parseMetricName(requested, &m))
    SLIM_THROW(ConfigError, "TrainConfig.eval_metric: expected one of [auto, top1, miou, "
               "pixel_acc, distill_loss], found '", requested, "'");
  const std::string key = requested == "auto" || requested.empty()
                              ? "evaluation (TrainConfig.eval_metric: auto)"
                              : "TrainConfig.eval_metric: " + requested;
  if ((m == Metric::kTop1 || m == Metric::kMiou || m == Metric::kPixelAcc) && !labels.labelled)
    SLIM_THROW(ConfigError, key, " needs labels, but ", data, " has none (use distill_loss)");
  if (m == Metric::kTop1 && labels.masks)
    SLIM_THROW(ConfigError, key, ": ", data, " holds (N, H, W) masks, not (N) class labels "
               "(use miou or pixel_acc)");
  if ((m == Metric::kMiou || m == Metric::kPixelAcc) && !labels.masks)
    SLIM_THROW(ConfigError, key, ": ", data, " holds (N) class labels, not (N, H, W) masks "
               "(use top1)");
  return m;
}

ConfusionMatrix::ConfusionMatrix(int64_t classes) { resize(classes); }

void ConfusionMatrix::resize(int64_t classes) {
  if (classes == classes_) return;
  std::vector<int64_t> grown(static_cast<size_t>(classes * classes), 0);
  for (int64_t l = 0; l < std::min(classes, classes_); ++l)
    for (int64_t p = 0; p < std::min(classes, classes_); ++p)
      grown[static_cast<size_t>(l * classes + p)] = counts_[static_cast<size_t>(l * classes_ + p)];
  counts_ = std::move(grown);
  classes_ = classes;
}

int64_t ConfusionMatrix::add(const int64_t* labels, const int64_t* predicted, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] != data::kIgnoreLabel && (labels[i] < 0 || labels[i] >= classes_)) return i;
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] == data::kIgnoreLabel) continue;
    SLIM_ENFORCE(predicted[i] >= 0 && predicted[i] < classes_, "prediction ", predicted[i],
                 " outside [0, ", classes_, ")");
    counts_[static_cast<size_t>(labels[i] * classes_ + predicted[i])]++;
  }
  return -1;
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts_) t += v;
  return t;
}

int64_t ConfusionMatrix::correct() const {
  int64_t t = 0;
  for (int64_t k = 0; k < classes_; ++k) t += counts_[static_cast<size_t>(k * classes_ + k)];
  return t;
}

std::vector<double> ConfusionMatrix::iou() const {
  std::vector<double> out(static_cast<size_t>(classes_));
  for (int64_t k = 0; k < classes_; ++k) {
    int64_t tp = counts_[static_cast<size_t>(k * classes_ + k)], row = 0, col = 0;
    for (int64_t j = 0; j < classes_; ++j) {
      row += counts_[static_cast<size_t>(k * classes_ + j)];  // labelled k
      col += counts_[static_cast<size_t>(j * classes_ + k)];  // predicted k
    }
    const int64_t uni = row + col - tp;
    out[static_cast<size_t>(k)] = uni > 0 ? static_cast<double>(tp) / static_cast<double>(uni)
                                          : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

double ConfusionMatrix::meanIou() const {
  double sum = 0;
  int64_t n = 0;
  for (double v : iou())
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

double ConfusionMatrix::pixelAccuracy() const {
  const int64_t t = total();
  return t > 0 ? static_cast<double>(correct()) / static_cast<double>(t)
               : std::numeric_limits<double>::quiet_NaN();
}

void predictions(const Tensor& y, std::vector<int64_t>* pred) {
  SLIM_ENFORCE(y.ndim() >= 1 && y.dtype() == DType::kF32, "predictions: expected a float "
               "output with a batch dimension, got ", shapeStr(y.shape()));
  const int64_t b = y.dim(0);
  const float* v = y.f32();
  if (y.ndim() == 4) {  // (B, C, H, W): argmax over C per pixel
    const int64_t c = y.dim(1), hw = y.dim(2) * y.dim(3);
    pred->assign(static_cast<size_t>(b * hw), 0);
    for (int64_t i = 0; i < b; ++i) {
      const float* s = v + i * c * hw;
      int64_t* out = pred->data() + i * hw;
      for (int64_t p = 0; p < hw; ++p) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; ++k)
          if (s[k * hw + p] > s[best * hw + p]) best = k;
        out[p] = best;
      }
    }
    return;
  }
  const int64_t n = b > 0 ? y.numel() / b : 0;
  pred->resize(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < n; ++k)
      if (v[i * n + k] > v[i * n + best]) best = k;
    (*pred)[static_cast<size_t>(i)] = best;
  }
}

int64_t sampleSquaredError(const Tensor& student, const Tensor& teacher, int64_t b) {
  SLIM_ENFORCE(student.shape() == teacher.shape(), "distill_loss: student output ",
               shapeStr(student.shape()), " and teacher output ", shapeStr(teacher.shape()),
               " differ in shape");
  const int64_t n = student.numel() / student.dim(0);
  const float* s = student.f32() + b * n;
  const float* t = teacher.f32() + b * n;
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    const double d = static_cast<double>(s[k]) - static_cast<double>(t[k]);
    sum += d * d;
  }
  const double v = n > 0 ? sum / static_cast<double>(n) * kLossUnits : 0.0;
  if (!std::isfinite(v) || v >= 1125899906842624.0) return -1;  // 2^50
  return std::llround(v);
}

}  // namespace slim::train
