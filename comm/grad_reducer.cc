// Bucketed gradient allreduce (see grad_reducer.h for the bucketing rule).
#include "comm/grad_reducer.h"

#include <cstring>

#include "comm/detail.h"

namespace slim::comm {

GradReducer::GradReducer(Communicator& comm, size_t bucket_bytes,
                         CollectiveOptions opts)
    : comm_(comm), bucket_floats_(bucket_bytes / sizeof(float)),
      opts_(std::move(opts)) {
  SLIM_ENFORCE_GE(bucket_bytes, sizeof(float),
                  "GradReducer bucket_bytes must hold at least one float");
}

GradReducer::~GradReducer() = default;

void GradReducer::add(const std::string& name, float* grad, size_t count) {
  if (comm_.size() == 1 || count == 0) return;  // mean over one rank = input
  if (open_floats_ > 0 && open_floats_ + count > bucket_floats_) launch();
  if (buckets_.size() <= open_) buckets_.push_back(std::make_unique<Bucket>());
  Bucket& b = *buckets_[open_];
  if (open_floats_ == 0) {
    b.entries.clear();
    b.first_name = name;
  }
  if (b.data.size() < open_floats_ + count) b.data.resize(open_floats_ + count);
  std::memcpy(b.data.data() + open_floats_, grad, count * sizeof(float));
  b.entries.push_back({grad, count, open_floats_});
  open_floats_ += count;
  if (open_floats_ >= bucket_floats_) launch();
  // Drive progress of launched buckets (MPI progresses only inside MPI calls).
  for (size_t i = 0; i < open_; ++i)
    if (buckets_[i]->work) buckets_[i]->work->test();
}

void GradReducer::launch() {
  Bucket& b = *buckets_[open_];
  b.floats = open_floats_;
  CollectiveOptions o = opts_;
  o.tag = detail::str(opts_.tag.empty() ? "" : opts_.tag + " ", "grad bucket ",
                      open_, " (", b.entries.size(), " grads from '",
                      b.first_name, "')");
  b.work = comm_.iallreduce(b.data.data(), b.floats, DType::kF32,
                            ReduceOp::kSum, o);
  ++open_;
  open_floats_ = 0;
}

void GradReducer::finalize() {
  if (comm_.size() == 1) return;
  if (open_floats_ > 0) launch();
  const size_t n = open_;
  open_ = 0;  // the next step starts fresh even if a wait throws
  const float world = static_cast<float>(comm_.size());
  for (size_t i = 0; i < n; ++i) {
    Bucket& b = *buckets_[i];
    std::unique_ptr<Work> work = std::move(b.work);
    work->wait();
    for (const Entry& e : b.entries) {
      const float* src = b.data.data() + e.offset;
      for (size_t j = 0; j < e.count; ++j) e.grad[j] = src[j] / world;
    }
  }
  last_buckets_ = n;
}

void InlineGradReducer::add(const std::string& name, float* grad,
                            size_t count) {
  if (comm_.size() == 1 || count == 0) return;
  CollectiveOptions o = opts_;
  o.tag = "grad '" + name + "'";
  comm_.allreduce(grad, count, DType::kF32, ReduceOp::kSum, o);
  const float world = static_cast<float>(comm_.size());
  for (size_t j = 0; j < count; ++j) grad[j] /= world;
}

double allreduceBusBandwidth(double alg_bw, int n) {
  if (n <= 1) return 0.0;
  return alg_bw * 2.0 * (n - 1) / n;
}

}  // namespace slim::comm
