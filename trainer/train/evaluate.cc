// Sharded evaluation with exact, rank-independent counts.
#include "trainer/train/evaluate.h"

#include <numeric>

namespace slim::train {

int64_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; ++k)
    if (v[k] > v[best]) best = k;
  return best;
}

EvalResult evaluate(graph::Executor& ex, const EvalSpec& spec, const data::Dataset& ds,
                    comm::Communicator& comm) {
  const int64_t n = ds.size();
  const int64_t r = comm.rank(), w = comm.size();
  const int64_t begin = n * r / w, end = n * (r + 1) / w;
  ops::RunContext ctx;
  ctx.training = false;
  Tensor images, labels;
  std::vector<int64_t> idx;
  int64_t counts[2] = {0, 0};  // correct, total
  for (int64_t s = begin; s < end; s += spec.batch) {
    const int64_t b = std::min(spec.batch, end - s);
    idx.resize(b);
    std::iota(idx.begin(), idx.end(), s);
    data::fillBatch(ds, idx, images, labels);
    std::map<std::string, Tensor> feeds{{spec.image_input, images}};
    if (!spec.label_input.empty()) feeds[spec.label_input] = labels;
    ex.forward(feeds, ctx);
    const Tensor& y = ex.value(spec.logits);
    SLIM_ENFORCE(y.ndim() == 2 && y.dim(0) == b, "eval: logits '", spec.logits,
                 "' must be [batch, classes], got ", shapeStr(y.shape()));
    const int64_t c = y.dim(1);
    const int64_t* lab = labels.data<int64_t>();
    for (int64_t i = 0; i < b; ++i)
      if (argmax(y.f32() + i * c, c) == lab[i]) counts[0]++;
    counts[1] += b;
  }
  comm::CollectiveOptions o;
  o.tag = "eval counts";
  comm.allreduce(counts, 2, DType::kI64, comm::ReduceOp::kSum, o);
  EvalResult res;
  res.correct = counts[0];
  res.total = counts[1];
  res.top1 = res.total > 0 ? static_cast<double>(res.correct) / res.total : 0.0;
  return res;
}

}  // namespace slim::train
