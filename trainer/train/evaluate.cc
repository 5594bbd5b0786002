// Sharded evaluation with exact, rank-independent counts.
#include "trainer/train/evaluate.h"

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

EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm, const PredictionSink& sink) {
  return evaluateMany(ex, spec, {spec.logits}, ds, comm, sink)[0];
}

std::vector<EvalResult> evaluateMany(graph::Executor& ex, const EvalSpec& spec,
                                     const std::vector<std::string>& logits,
                                     const data::Dataset& ds, comm::Communicator& comm,
                                     const PredictionSink& sink) {
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
  // Per target: correct, total; then whether a stop signal cut the pass
  // short on this rank (no collective runs per batch, so a rank may leave
  // early; the sum below tells every rank).
  std::vector<int64_t> counts(2 * nt + 1, 0);
  while (loader.next(batch)) {
    if (stopRequested()) {
      counts[2 * nt] = 1;
      break;
    }
    const int64_t b = batch.labels.numel();
    std::map<std::string, Tensor> feeds{{spec.image_input, batch.images}};
    if (!spec.label_input.empty()) feeds[spec.label_input] = batch.labels;
    ex.forward(feeds, ctx);
    const int64_t* lab = batch.labels.data<int64_t>();
    for (size_t t = 0; t < nt; ++t) {
      const Tensor& y = ex.value(logits[t]);
      SLIM_ENFORCE(y.ndim() == 2 && y.dim(0) == b, "eval: logits '", logits[t],
                   "' must be [batch, classes], got ", shapeStr(y.shape()));
      const int64_t c = y.dim(1);
      pred.resize(static_cast<size_t>(b));
      for (int64_t i = 0; i < b; ++i) {
        pred[i] = argmax(y.f32() + i * c, c);
        if (pred[i] == lab[i]) counts[2 * t]++;
      }
      counts[2 * t + 1] += b;
      if (sink && t == 0) sink(batch, pred);
    }
  }
  comm::CollectiveOptions o;
  o.tag = "eval counts";
  comm.allreduce(counts.data(), counts.size(), DType::kI64, comm::ReduceOp::kSum, o);
  std::vector<EvalResult> res(nt);
  for (size_t t = 0; t < nt; ++t) {
    res[t].stopped = counts[2 * nt] > 0;
    res[t].correct = counts[2 * t];
    res[t].total = counts[2 * t + 1];
    res[t].top1 = res[t].total > 0 ? static_cast<double>(res[t].correct) / res[t].total : 0.0;
  }
  return res;
}

}  // namespace slim::train
