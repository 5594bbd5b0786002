// Sharded evaluation with exact, rank-independent counts.
#include "trainer/train/evaluate.h"

#include <algorithm>
#include <numeric>

#include "trainer/core/signals.h"
#include "trainer/data/loader.h"
#include "trainer/data/sampler.h"

namespace slim::train {

int64_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; ++k)
    if (v[k] > v[best]) best = k;
  return best;
}

double EvalResult::value() const {
  switch (metric) {
    case Metric::kTop1: return top1;
    case Metric::kMiou: return miou;
    case Metric::kPixelAcc: return pixel_acc;
    case Metric::kDistillLoss: return distill_loss;
  }
  return NAN;
}

void addEvalFields(JsonObject& out, const std::string& prefix, const EvalResult& r) {
  switch (r.metric) {
    case Metric::kTop1: out.add(prefix + "top1", r.top1); break;
    case Metric::kMiou:
    case Metric::kPixelAcc:
      out.add(prefix + "miou", r.miou).add(prefix + "pixel_acc", r.pixel_acc);
      break;
    case Metric::kDistillLoss: out.add(prefix + "distill_loss", r.distill_loss); break;
  }
}

Metric metricFor(const EvalSpec& spec, const data::Dataset& ds) {
  LabelKind k;
  if (ds.source) {
    k.labelled = ds.source->hasLabels();
    k.masks = !ds.source->labelShape().empty();
  }
  return chooseMetric(spec.metric, k, ds.describe());
}

EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm, const PredictionSink& sink) {
  return evaluateMany(ex, spec, {spec.logits}, ds, comm, sink)[0];
}

namespace {

// Checks one output against the batch's labels for `m`; throws naming both.
void checkShapes(Metric m, const Tensor& y, const Tensor& labels, const std::string& name) {
  const int64_t b = labels.dim(0);
  const bool seg = m == Metric::kMiou || m == Metric::kPixelAcc;
  if (m == Metric::kTop1)
    SLIM_ENFORCE(y.ndim() == 2 && y.dim(0) == b, "eval (top1): output '", name,
                 "' must be [batch, classes], got ", shapeStr(y.shape()),
                 " (segmentation outputs are scored by miou or pixel_acc)");
  if (seg)
    SLIM_ENFORCE(y.ndim() == 4 && y.dim(0) == b && labels.ndim() == 3 &&
                     y.dim(2) == labels.dim(1) && y.dim(3) == labels.dim(2),
                 "eval (", metricName(m), "): output '", name, "' must be [batch, classes, H, W] "
                 "with the masks' H x W, got ", shapeStr(y.shape()), " for masks ",
                 shapeStr(labels.shape()));
  if (m == Metric::kDistillLoss)
    SLIM_ENFORCE(y.ndim() >= 1 && y.dim(0) == b, "eval (distill_loss): output '", name,
                 "' has no batch dimension of ", b, ": ", shapeStr(y.shape()));
}

}  // namespace

std::vector<EvalResult> evaluateMany(graph::Executor& ex, const EvalSpec& spec,
                                     const std::vector<std::string>& logits,
                                     const data::Dataset& ds, comm::Communicator& comm,
                                     const PredictionSink& sink) {
  // Decided from the data set and the spec alone, so every rank agrees
  // before any batch (a rank may have none).
  const Metric metric = metricFor(spec, ds);
  const bool seg = metric == Metric::kMiou || metric == Metric::kPixelAcc;
  const data::IndexRange shard = data::evalShard(ds.size(), comm.size(), comm.rank());
  ops::RunContext ctx;
  ctx.training = false;
  // Contiguous batches of this rank's shard, decoded ahead by the workers.
  int64_t next_start = shard.begin;
  data::BatchLoader loader(
      ds,
      [&, batch = spec.batch](std::vector<int64_t>& idx, int64_t& epoch) {
        if (next_start >= shard.end) return false;
        const int64_t b = std::min(batch, shard.end - next_start);
        idx.resize(static_cast<size_t>(b));
        std::iota(idx.begin(), idx.end(), next_start);
        next_start += b;
        epoch = 0;
        return true;
      },
      {spec.workers, spec.workers + 1});
  data::Batch batch;
  std::vector<int64_t> pred;
  const size_t nt = logits.size();
  // Per target: correct, total, loss sum (kLossUnits), non-finite losses;
  // then whether a stop signal cut the pass short on this rank (no
  // collective runs per batch, so a rank may leave early; the sum below
  // tells every rank).
  constexpr size_t kPer = 4;
  std::vector<int64_t> counts(kPer * nt + 1, 0);
  std::vector<ConfusionMatrix> cm(nt);
  while (loader.next(batch)) {
    if (stopRequested()) {
      counts[kPer * nt] = 1;
      break;
    }
    const int64_t b = batch.labels.dim(0);
    std::map<std::string, Tensor> feeds{{spec.image_input, batch.images}};
    if (!spec.label_input.empty()) feeds[spec.label_input] = batch.labels;
    ex.forward(feeds, ctx);
    const int64_t* lab = batch.labels.data<int64_t>();
    for (size_t t = 0; t < nt; ++t) {
      const Tensor& y = ex.value(logits[t]);
      checkShapes(metric, y, batch.labels, logits[t]);
      int64_t* c = counts.data() + kPer * t;
      predictions(y, &pred);
      if (metric == Metric::kTop1) {
        for (int64_t i = 0; i < b; ++i) c[0] += pred[static_cast<size_t>(i)] == lab[i];
        c[1] += b;
      } else if (seg) {
        if (cm[t].classes() < y.dim(1)) cm[t].resize(y.dim(1));
        const int64_t hw = y.dim(2) * y.dim(3);
        for (int64_t i = 0; i < b; ++i) {
          const int64_t bad = cm[t].add(lab + i * hw, pred.data() + i * hw, hw);
          if (bad >= 0)
            SLIM_THROW(DataError, ds.source->where(batch.indices[static_cast<size_t>(i)]),
                       ": mask value ", lab[i * hw + bad], " at (", bad / y.dim(3), ", ",
                       bad % y.dim(3), ") is not one of the model's ", y.dim(1),
                       " classes nor the ignore index ", data::kIgnoreLabel);
        }
      } else {
        if (!spec.reference.empty()) {
          const Tensor& ref = ex.value(spec.reference);
          for (int64_t i = 0; i < b; ++i) {
            const int64_t v = sampleSquaredError(y, ref, i);
            if (v < 0) c[3]++;
            else c[2] += v;
          }
        }
        c[1] += b;
      }
      if (sink && t == 0) sink(batch, pred);
    }
  }
  comm::CollectiveOptions o;
  o.tag = "eval counts";
  comm.allreduce(counts.data(), counts.size(), DType::kI64, comm::ReduceOp::kSum, o);
  if (seg) {
    // Ranks agree on the class count (a rank may have seen no batch), then
    // sum the matrices as integers: exact on any number of ranks.
    int64_t classes = 0;
    for (const auto& m : cm) classes = std::max(classes, m.classes());
    comm::CollectiveOptions co;
    co.tag = "eval classes";
    comm.allreduce(&classes, 1, DType::kI64, comm::ReduceOp::kMax, co);
    std::vector<int64_t> all;
    for (auto& m : cm) {
      m.resize(classes);
      all.insert(all.end(), m.counts().begin(), m.counts().end());
    }
    comm::CollectiveOptions mo;
    mo.tag = "eval confusion matrices";
    if (!all.empty())
      comm.allreduce(all.data(), all.size(), DType::kI64, comm::ReduceOp::kSum, mo);
    const size_t per = static_cast<size_t>(classes * classes);
    for (size_t t = 0; t < nt; ++t)
      std::copy(all.begin() + t * per, all.begin() + (t + 1) * per, cm[t].counts().begin());
  }
  std::vector<EvalResult> res(nt);
  for (size_t t = 0; t < nt; ++t) {
    EvalResult& r = res[t];
    const int64_t* c = counts.data() + kPer * t;
    r.metric = metric;
    r.stopped = counts[kPer * nt] > 0;
    if (seg) {
      r.confusion = cm[t];
      r.correct = cm[t].correct();
      r.total = cm[t].total();
      r.miou = cm[t].meanIou();
      r.pixel_acc = cm[t].pixelAccuracy();
      r.top1 = NAN;
    } else {
      r.correct = c[0];
      r.total = c[1];
      if (metric == Metric::kTop1)
        r.top1 = r.total > 0 ? static_cast<double>(r.correct) / r.total : 0.0;
      else {
        r.top1 = NAN;
        r.distill_loss = r.total > 0 && c[3] == 0 && !spec.reference.empty()
                             ? static_cast<double>(c[2]) / kLossUnits / static_cast<double>(r.total)
                             : NAN;
      }
    }
  }
  return res;
}

}  // namespace slim::train
