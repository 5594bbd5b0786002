// GradientRouter: the exact path or comm::GradReducer, per gradient.
#include "trainer/rank_reduction/gradient_router.h"

#include <utility>

namespace slim::rank_reduction {

GradientRouter::GradientRouter(comm::Communicator& comm, size_t bucket_bytes,
                               comm::CollectiveOptions opts,
                               std::function<bool(const std::string&)> exact)
    : world_(comm.size()), float_path_(comm, bucket_bytes, std::move(opts)),
      exact_(std::move(exact)) {}

void GradientRouter::add(const std::string& name, float* grad, size_t count) {
  // Weight gradients the ops already reduced over ranks (exactly) skip the
  // bucketed float allreduce.
  if (world_ > 1 && !exact_(name)) float_path_.add(name, grad, count);
}

void GradientRouter::finalize() {
  if (world_ > 1) float_path_.finalize();
}

}  // namespace slim::rank_reduction
