// BatchNormalization: training/inference forward and running-stat update
// against naive formulas, finite-difference gradients in both modes, and sync
// BN over two thread-ranks matching one rank holding the whole batch.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

// Inputs X, scale, B, running mean, running var (var > 0).
std::vector<Tensor> bnInputs(Shape xs, uint64_t seed) {
  const int64_t c = xs[1];
  return {test::randomTensor(xs, seed, -2.f, 3.f), test::randomTensor({c}, seed + 1, 0.5f, 1.5f),
          test::randomTensor({c}, seed + 2), test::randomTensor({c}, seed + 3),
          test::randomTensor({c}, seed + 4, 0.5f, 2.f)};
}

ops::Attrs bnAttrs() {
  ops::Attrs a;
  a.set("epsilon", 1e-3f);
  a.set("momentum", 0.8f);
  return a;
}

TEST(BatchNorm, TrainingForwardAndRunningStats) {
  auto in = bnInputs({3, 2, 2, 3}, 1);
  auto rm0 = in[3].clone(), rv0 = in[4].clone();
  auto op = ops::OpRegistry::get().create("BatchNormalization", bnAttrs(), "bn");
  auto y = test::runForward(*op, in, 1, true)[0];
  const int64_t N = 3, C = 2, S = 6, cnt = N * S;
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += in[0].f32()[(n * C + c) * S + s];
    mean /= cnt;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += std::pow(in[0].f32()[(n * C + c) * S + s] - mean, 2);
    var /= cnt;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        const double want =
            (in[0].f32()[i] - mean) / std::sqrt(var + 1e-3) * in[1].f32()[c] + in[2].f32()[c];
        ASSERT_NEAR(y.f32()[i], want, 1e-4) << "element " << i;
      }
    EXPECT_NEAR(in[3].f32()[c], 0.8 * rm0.f32()[c] + 0.2 * mean, 1e-5) << "running mean";
    EXPECT_NEAR(in[4].f32()[c], 0.8 * rv0.f32()[c] + 0.2 * var * cnt / (cnt - 1), 1e-5)
        << "running var must use the unbiased variance";
  }
}

TEST(BatchNorm, InferenceUsesRunningStatsAndLeavesThem) {
  auto in = bnInputs({2, 3, 2, 2}, 2);
  auto rm0 = in[3].clone(), rv0 = in[4].clone();
  auto op = ops::OpRegistry::get().create("BatchNormalization", bnAttrs(), "bn");
  auto y = test::runForward(*op, in, 1, false)[0];
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t c = (i / 4) % 3;
    const double want = (in[0].f32()[i] - rm0.f32()[c]) / std::sqrt(rv0.f32()[c] + 1e-3) *
                            in[1].f32()[c] + in[2].f32()[c];
    ASSERT_NEAR(y.f32()[i], want, 1e-4);
  }
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_EQ(in[3].f32()[c], rm0.f32()[c]);
    EXPECT_EQ(in[4].f32()[c], rv0.f32()[c]);
  }
}

TEST(BatchNorm, DeclaresRunningStatsAsState) {
  auto op = ops::OpRegistry::get().create("BatchNormalization", ops::Attrs{}, "bn");
  EXPECT_EQ(op->stateInputs(), (std::vector<int>{3, 4}));
}

TEST(BatchNorm, GradientsTraining) {
  test::gradCheck("BatchNormalization", bnAttrs(), bnInputs({3, 2, 2, 2}, 3), 1);
  test::gradCheck("BatchNormalization", bnAttrs(), bnInputs({5, 3}, 4), 1);
}

TEST(BatchNorm, GradientsInference) {
  test::GradCheckOptions opt;
  opt.training = false;
  test::gradCheck("BatchNormalization", bnAttrs(), bnInputs({2, 3, 2, 2}, 5), 1, opt);
}

// Threads-as-ranks StateSync for `size` ranks sharing one instance.
class ThreadSync : public rank_reduction::StateSync {
 public:
  explicit ThreadSync(int size) : size_(size) {}
  void allreduce(float* data, size_t n, rank_reduction::SyncOp op) override { reduce(data, n, op); }
  void sumFixed(rank_reduction::Fixed* data, size_t n) override {
    std::vector<double> d(n);  // test values are small: exact enough through double
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<double>(data[i]);
    reduce(d.data(), n, rank_reduction::SyncOp::kSum);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<rank_reduction::Fixed>(d[i]);
  }
  int size() const override { return size_; }
  int calls() const { return calls_; }

 private:
  int size_, arrived_ = 0, calls_ = 0;
  int64_t generation_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<double> acc_, result_;

  // Two ranks: a + b == b + a, so arrival order does not matter.
  template <typename T>
  void reduce(T* data, size_t n, rank_reduction::SyncOp op) {
    std::unique_lock<std::mutex> lock(mu_);
    if (arrived_ == 0) acc_.assign(data, data + n);
    else
      for (size_t i = 0; i < n; ++i)
        acc_[i] = op == rank_reduction::SyncOp::kSum ? acc_[i] + data[i]
                                                     : std::max<double>(acc_[i], data[i]);
    ++calls_;
    if (++arrived_ == size_) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      const int64_t gen = generation_;
      if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return generation_ != gen; }))
        throw CommError("ThreadSync: allreduce timed out", -1, "allreduce");
    }
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<T>(result_[i]);
  }
};

// Rows [begin, end) of the first dimension.
Tensor rows(const Tensor& t, int64_t begin, int64_t end) {
  Shape s = t.shape();
  const int64_t inner = t.numel() / s[0];
  s[0] = end - begin;
  Tensor out(s);
  std::copy(t.f32() + begin * inner, t.f32() + end * inner, out.f32());
  return out;
}

struct RankResult {
  Tensor y, dx, dscale, dbias, rmean, rvar;
};

RankResult runBn(std::vector<Tensor> in, const Tensor& dy, rank_reduction::StateSync* sync) {
  auto op = ops::OpRegistry::get().create("BatchNormalization", bnAttrs(), "sync_bn");
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = sync;
  RankResult r;
  std::vector<Tensor*> pin;
  for (auto& t : in) pin.push_back(&t);
  op->forward(pin, {&r.y}, ctx);
  op->backward(pin, {&r.y}, {&dy}, {&r.dx, &r.dscale, &r.dbias, nullptr, nullptr}, ctx);
  r.rmean = in[3];
  r.rvar = in[4];
  return r;
}

void expectClose(const Tensor& got, const float* want, const char* what, float tol = 1e-4f) {
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.f32()[i], want[i], tol) << what << " element " << i;
}

TEST(BatchNorm, SyncOverTwoRanksEqualsFullBatch) {
  auto in = bnInputs({4, 3, 2, 3}, 6);
  Tensor dy = test::randomTensor(in[0].shape(), 99);
  std::vector<Tensor> full_in;
  for (auto& t : in) full_in.push_back(t.clone());
  RankResult full = runBn(full_in, dy, nullptr);

  // Uneven split (1 + 3 samples): the global count must come from the allreduce.
  const int64_t split = 1;
  ThreadSync sync(2);
  RankResult res[2];
  std::exception_ptr err[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        const int64_t b = r == 0 ? 0 : split, e = r == 0 ? split : 4;
        std::vector<Tensor> rin{rows(in[0], b, e)};
        for (int i = 1; i < 5; ++i) rin.push_back(in[i].clone());
        res[r] = runBn(rin, rows(dy, b, e), &sync);
      } catch (...) {
        err[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : err) if (e) std::rethrow_exception(e);
  EXPECT_EQ(sync.calls(), 2 * 3) << "two forward allreduces + one backward, per rank";

  const int64_t inner = in[0].numel() / 4;
  expectClose(res[0].y, full.y.f32(), "rank 0 y");
  expectClose(res[1].y, full.y.f32() + split * inner, "rank 1 y");
  expectClose(res[0].dx, full.dx.f32(), "rank 0 dx");
  expectClose(res[1].dx, full.dx.f32() + split * inner, "rank 1 dx");
  for (int r = 0; r < 2; ++r) {
    expectClose(res[r].rmean, full.rmean.f32(), "running mean");
    expectClose(res[r].rvar, full.rvar.f32(), "running var");
  }
  // Parameter gradients are rank-local; their sum is the full-batch gradient.
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(res[0].dscale.f32()[c] + res[1].dscale.f32()[c], full.dscale.f32()[c], 1e-4);
    EXPECT_NEAR(res[0].dbias.f32()[c] + res[1].dbias.f32()[c], full.dbias.f32()[c], 1e-4);
  }
}

// Batch sums visit rows by image over threads, or by channel when there are
// fewer images than threads: the same bits for any thread count.
TEST(BatchNorm, SameBitsForAnyThreadCount) {
  for (int64_t n : {1, 5}) {
    auto in = bnInputs({n, 3, 4, 5}, 11);
    Tensor dy = test::randomTensor(in[0].shape(), 12);
    RankResult r[2];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t + 1);
      std::vector<Tensor> copy;
      for (auto& x : in) copy.push_back(x.clone());
      r[t] = runBn(copy, dy, nullptr);
    }
    omp_set_num_threads(saved);
    auto same = [](const Tensor& a, const Tensor& b) {
      return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
    };
    EXPECT_TRUE(same(r[0].y, r[1].y)) << "n " << n;
    EXPECT_TRUE(same(r[0].dx, r[1].dx)) << "n " << n;
    EXPECT_TRUE(same(r[0].dscale, r[1].dscale)) << "n " << n;
    EXPECT_TRUE(same(r[0].dbias, r[1].dbias)) << "n " << n;
    EXPECT_TRUE(same(r[0].rvar, r[1].rvar)) << "n " << n;
  }
}

TEST(BatchNorm, RejectsBadShapes) {
  auto op = ops::OpRegistry::get().create("BatchNormalization", ops::Attrs{}, "bad_bn");
  auto in = bnInputs({2, 3, 2, 2}, 8);
  in[1] = Tensor({4});
  EXPECT_THROW(test::runForward(*op, in, 1, true), ShapeError);
}

}  // namespace
}  // namespace slim
