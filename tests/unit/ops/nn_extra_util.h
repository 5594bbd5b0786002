// Helpers of the op tests for the ops that reduce parameter gradients over
// the batch (nn_extra_test.cc, conv_transpose_test.cc): creating an op,
// comparing values, and the two-rank checks — the whole batch on one rank vs
// halves on two thread-ranks reduced exactly by the ops themselves.
#pragma once

#include <gtest/gtest.h>

#include <omp.h>

#include <array>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim::test {

inline std::unique_ptr<ops::Op> make(const std::string& type, const ops::Attrs& a = {}) {
  return ops::OpRegistry::get().create(type, a, "t");
}

inline Tensor floats(Shape s, std::vector<float> v) { return Tensor::fromVector(std::move(s), v); }

inline void expectNear(const Tensor& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.f32()[i], want[i], tol) << "element " << i;
}

// ---- Exact two-rank reduction ------------------------------------------------

// Threads-as-ranks StateSync adding fixed-point values exactly.
class ExactSync : public rank_reduction::StateSync {
 public:
  explicit ExactSync(int size) : size_(size) {}
  void allreduce(float* data, size_t n, rank_reduction::SyncOp) override {
    std::vector<rank_reduction::Fixed> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<rank_reduction::Fixed>(data[i]);
    reduce(v.data(), n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(v[i]);
  }
  void sumFixed(rank_reduction::Fixed* data, size_t n) override { reduce(data, n); }
  int size() const override { return size_; }

 private:
  void reduce(rank_reduction::Fixed* data, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    if (arrived_ == 0) acc_.assign(data, data + n);
    else
      for (size_t i = 0; i < n; ++i) acc_[i] += data[i];
    if (++arrived_ == size_) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      const int64_t gen = generation_;
      if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return generation_ != gen; }))
        throw CommError("ExactSync: timed out", -1, "sumFixed");
    }
    std::copy(result_.begin(), result_.end(), data);
  }
  int size_, arrived_ = 0;
  int64_t generation_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<rank_reduction::Fixed> acc_, result_;
};

inline Tensor rows(const Tensor& t, int64_t begin, int64_t end) {
  Shape s = t.shape();
  const int64_t inner = t.numel() / s[0];
  s[0] = end - begin;
  Tensor out(s);
  std::copy(t.f32() + begin * inner, t.f32() + end * inner, out.f32());
  return out;
}

// Gradients of every input of `type` for inputs `in` (input 0 the batch),
// dy = `dy`; the inputs `params` are marked rank-reduced (Op::
// setRankReducedInputs: the ops' exact path), reduced over ranks with `sync`.
inline std::vector<Tensor> grads(const std::string& type, const ops::Attrs& a,
                                 std::vector<Tensor> in, const Tensor& dy,
                                 rank_reduction::StateSync* sync, const std::vector<bool>& params,
                                 const std::vector<rank_reduction::SampleLayout>& samples = {}) {
  auto op = make(type, a);
  op->setRankReducedInputs(params);
  for (size_t i = 0; i < samples.size(); ++i) op->setInputSamples(i, samples[i]);
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = sync;
  std::vector<Tensor*> pin;
  for (auto& t : in) pin.push_back(t.defined() ? &t : nullptr);
  Tensor y;
  op->forward(pin, {&y}, ctx);
  std::vector<Tensor> g(in.size());
  std::vector<Tensor*> din;
  for (auto& t : g) din.push_back(&t);
  op->backward(pin, {&y}, {&dy}, din, ctx);
  return g;
}

// Runs `rank_grads(r, &sync)` for r = 0, 1 on two threads joined by one
// ExactSync (two ranks); rethrows the first exception; the two results.
template <typename F>
std::array<std::vector<Tensor>, 2> onTwoRanks(F rank_grads) {
  ExactSync sync(2);
  std::array<std::vector<Tensor>, 2> res;
  std::exception_ptr err[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        res[r] = rank_grads(r, &sync);
      } catch (...) {
        err[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : err)
    if (e) std::rethrow_exception(e);
  return res;
}

// Whole batch on one rank vs halves on two ranks: every parameter gradient
// (params[i]) of each rank, times 2 (the op returns the mean over ranks), has
// the bits of the whole batch's.
inline void expectRankExact(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in,
                            const std::vector<bool>& params) {
  const int64_t N = in[0].dim(0), half = N / 2;
  auto probe = make(type, a);
  std::vector<Tensor> copy;
  for (auto& t : in) copy.push_back(t.defined() ? t.clone() : Tensor());
  Tensor y0 = test::runForward(*probe, copy, 1, true)[0];
  Tensor dy = randomTensor(y0.shape(), 77);
  auto full = grads(type, a, in, dy, nullptr, params);
  const auto res = onTwoRanks([&](int r, ExactSync* sync) {
    const int64_t b = r * half, e = r == 0 ? half : N;
    std::vector<Tensor> rin{rows(in[0], b, e)};
    for (size_t i = 1; i < in.size(); ++i) rin.push_back(in[i]);
    return grads(type, a, rin, rows(dy, b, e), sync, params);
  });
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i]) continue;
    const Tensor& f = full[i];
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(res[r][i].numel(), f.numel());
      for (int64_t k = 0; k < f.numel(); ++k)
        ASSERT_EQ(res[r][i].f32()[k] * 2.f, f.f32()[k])
            << type << " input " << i << " element " << k << " rank " << r;
    }
  }
}

// The data-parallel setting itself, for gradients of any magnitude
// (exact_sum.h, "Gradients on 2^k ranks"): the whole batch on one rank with
// dy * `scale`, and its halves on two ranks with twice that dy (each rank's
// loss averages its own samples). Every parameter gradient (params[i]) of
// each rank, the op's result over ranks, has the whole batch's bits; with
// `dx`, input 0's gradient on each rank is twice the whole batch's rows
// (BatchNormalization's dx reads the sums over ranks). Inputs other than 0
// are cloned for each run (BatchNormalization updates its running stats).
inline Tensor scaled(Tensor t, float s) {
  for (int64_t k = 0; k < t.numel(); ++k) t.f32()[k] *= s;
  return t;
}

inline void expectTinyRankExact(const std::string& type, const ops::Attrs& a,
                                const std::vector<Tensor>& in, const std::vector<bool>& params,
                                float scale, bool dx = false) {
  SCOPED_TRACE(testing::Message() << type << ", dy scale " << scale);
  const int64_t N = in[0].dim(0), half = N / 2;
  auto clones = [&](int64_t b, int64_t e) {
    std::vector<Tensor> c{rows(in[0], b, e)};
    for (size_t i = 1; i < in.size(); ++i) c.push_back(in[i].defined() ? in[i].clone() : Tensor());
    return c;
  };
  auto probe = make(type, a);
  std::vector<Tensor> probe_in = clones(0, N);
  const Tensor y0 = runForward(*probe, probe_in, 1, true)[0];
  const Tensor dy = scaled(randomTensor(y0.shape(), 78), scale);
  const auto full = grads(type, a, clones(0, N), dy, nullptr, params);
  const auto res = onTwoRanks([&](int r, ExactSync* sync) {
    const int64_t b = r * half, e = r == 0 ? half : N;
    return grads(type, a, clones(b, e), scaled(rows(dy, b, e), 2.f), sync, params);
  });
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i]) continue;
      ASSERT_EQ(res[r][i].numel(), full[i].numel());
      for (int64_t k = 0; k < full[i].numel(); ++k)
        ASSERT_EQ(std::bit_cast<uint32_t>(res[r][i].f32()[k]),
                  std::bit_cast<uint32_t>(full[i].f32()[k]))
            << "input " << i << " element " << k << " rank " << r << ": " << res[r][i].f32()[k]
            << " vs " << full[i].f32()[k];
    }
    if (!dx) continue;
    const int64_t inner = in[0].numel() / N;
    for (int64_t k = 0; k < half * inner; ++k)
      ASSERT_EQ(res[r][0].f32()[k], 2.f * full[0].f32()[r * half * inner + k])
          << "dx element " << k << " rank " << r;
  }
}

// Every output and gradient of `type` on `in` with one thread and with three
// have the same bits.
inline void expectSameBitsForAnyThreadCount(const std::string& type, const ops::Attrs& attrs,
                                            const std::vector<Tensor>& in) {
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
  };
  const int saved = omp_get_max_threads();
  Tensor y[2];
  std::vector<Tensor> g[2];
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t == 0 ? 1 : 3);
    auto op = make(type, attrs);
    std::vector<Tensor> copy = in;
    y[t] = runForward(*op, copy, 1, true)[0];
    g[t] = grads(type, attrs, in, randomTensor(y[t].shape(), 90), nullptr, {});
  }
  omp_set_num_threads(saved);
  EXPECT_TRUE(same(y[0], y[1])) << type;
  for (size_t i = 0; i < g[0].size(); ++i)
    if (g[0][i].defined()) {
      EXPECT_TRUE(same(g[0][i], g[1][i])) << type << " input " << i;
    }
}

}  // namespace slim::test
