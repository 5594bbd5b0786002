// Data parallelism is exact (DESIGN.md §3): one step of mobilenet_tiny (sync
// batch norm, weight gradients reduced over ranks by the ops in fixed point)
// on 2 threads-as-ranks with batch B gives bit-identical parameter gradients
// and BN statistics to 1 rank with the concatenated batch 2B.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "comm/local/thread_group.h"
#include "trainer/core/rng.h"
#include "trainer/data/sampler.h"
#include "trainer/graph/executor.h"
#include "trainer/models/zoo.h"
#include "trainer/rank_reduction/comm_state_sync.h"
#include "trainer/rank_reduction/gradient_router.h"
#include "trainer/train/setup.h"

namespace slim::train {
namespace {

constexpr int64_t kBatch = 32;  // per rank

struct StepResult {
  int reduced = 0;  // parameters whose gradient the ops reduced over ranks
  std::map<std::string, std::vector<float>> grads;    // mean over ranks
  std::map<std::string, std::vector<float>> buffers;  // running stats after forward
};

// One forward/backward of samples [begin, end) of (images, labels) on `comm`.
StepResult step(const Tensor& images, const std::vector<int64_t>& labels, int64_t begin,
                int64_t end, comm::Communicator& comm) {
  graph::Graph g = models::buildZooModel("mobilenet_tiny", 1);
  GraphIo io = addClassificationLoss(g);
  graph::Executor ex(g);
  const int64_t n = end - begin, per = images.numel() / images.dim(0);
  Tensor x({n, images.dim(1), images.dim(2), images.dim(3)});
  std::copy(images.f32() + begin * per, images.f32() + end * per, x.f32());
  Tensor y = Tensor::fromInts({n}, {labels.begin() + begin, labels.begin() + end});
  rank_reduction::CommStateSync sync(comm);
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = comm.size() > 1 ? &sync : nullptr;
  ex.forward({{io.image, x}, {io.label, y}}, ctx);
  rank_reduction::GradientRouter router(
      comm, 64 * 1024, {}, [&](const std::string& name) { return ex.gradReducedOverRanks(name); });
  int reduced = 0;
  for (const auto& name : g.trainable) reduced += ex.gradReducedOverRanks(name);
  Tensor seed = Tensor::scalar(1.f);
  ex.backward({{io.loss, seed}}, ctx, [&](const std::string& name, Tensor& grad) {
    router.add(name, grad.f32(), static_cast<size_t>(grad.numel()));
  });
  router.finalize();
  StepResult r;
  r.reduced = reduced;
  for (const auto& name : ex.paramsInReadyOrder()) {
    const Tensor& t = ex.grad(name);
    r.grads[name].assign(t.f32(), t.f32() + t.numel());
  }
  for (const auto& name : g.buffers) {
    const Tensor& t = g.initializers.at(name);
    if (t.dtype() == DType::kF32) r.buffers[name].assign(t.f32(), t.f32() + t.numel());
  }
  return r;
}

// max|a-b| / max(max|b|, floor) over one tensor.
double relDiff(const std::vector<float>& a, const std::vector<float>& b, double floor = 1e-12) {
  double diff = 0, scale = floor;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

// Runs the step on 1 rank x 2B and 2 ranks x B and compares.
void expectSameStep(const Tensor& images, const std::vector<int64_t>& labels) {
  comm::ThreadGroup one(1);
  auto c1 = one.communicator(0);
  StepResult whole = step(images, labels, 0, 2 * kBatch, *c1);

  comm::ThreadGroup two(2);
  StepResult ranks[2];
  std::thread workers[2];
  for (int r = 0; r < 2; ++r)
    workers[r] = std::thread([&, r] {
      auto c = two.communicator(r);
      ranks[r] = step(images, labels, r * kBatch, (r + 1) * kBatch, *c);
    });
  for (auto& w : workers) w.join();

  ASSERT_EQ(whole.grads.size(), ranks[0].grads.size());
  // Batch reductions are exact and world-size invariant (rank_reduction/exact_sum.h):
  // every gradient and statistic has the same bits.
  for (const auto& [name, g] : whole.grads) {
    EXPECT_EQ(ranks[0].grads.at(name), ranks[1].grads.at(name)) << name << ": ranks differ";
    EXPECT_EQ(ranks[0].grads.at(name), g) << "gradient of " << name << " (relative difference "
                                          << relDiff(ranks[0].grads.at(name), g) << ")";
  }
  for (const auto& [name, b] : whole.buffers) {
    EXPECT_EQ(ranks[0].buffers.at(name), ranks[1].buffers.at(name)) << name << ": ranks differ";
    EXPECT_EQ(ranks[0].buffers.at(name), b) << "buffer " << name;
  }
  EXPECT_EQ(whole.reduced, static_cast<int>(whole.grads.size()))
      << "every mobilenet_tiny weight feeds a Conv, Gemm or BatchNormalization";
}

TEST(DataParallel, RandomBatch) {
  Rng rng(3);
  Tensor images({2 * kBatch, 1, 28, 28});
  for (int64_t i = 0; i < images.numel(); ++i) images.f32()[i] = rng.normal();
  std::vector<int64_t> labels(2 * kBatch);
  for (auto& l : labels) l = static_cast<int64_t>(rng.below(10));
  expectSameStep(images, labels);
}

// The first global batch of configs/fmnist_pretrain.yaml (seed 1): with the
// partial sums allreduced as floats, one ReLU of pw_relu_4 flipped and
// bn_0.bias's gradient moved by 4e-3 relative.
TEST(DataParallel, FashionMnistFirstBatch) {
  config::Global g;
  config::Data& d = g.data;
  d.train_images = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  d.train_labels = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(d.train_images))
    GTEST_SKIP() << d.train_images << " missing (Debian dataset-fashion-mnist)";
  d.mean = {0.2860};
  d.std_dev = {0.3530};
  data::Dataset ds = loadData(g, false);
  data::ShardedSampler sampler(ds.size(), 2 * kBatch, 1, 0, /*seed=*/1, /*shuffle=*/true);
  Tensor images, labels;
  data::fillBatch(ds, sampler.next(), images, labels);
  expectSameStep(images, {labels.data<int64_t>(), labels.data<int64_t>() + labels.numel()});
}

}  // namespace
}  // namespace slim::train
