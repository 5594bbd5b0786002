// One op run forward and backward on 1 thread and on more (2 and 3: an even
// and an uneven split), checking that every output, every input gradient
// and every input after the run (the state inputs an op writes, such as a
// fake-quant scale) has the bits of the one-thread run (memcmp).
#pragma once

#include <gtest/gtest.h>

#include <omp.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim::test {

struct ThreadsRun {
  std::vector<Tensor> outs, grads, inputs;
};

/// Runs op `type` on copies of `inputs` with `threads` OpenMP threads:
/// forward, then (when the op is differentiable) backward with output
/// gradients `douts` into the inputs marked in `grad`.
inline ThreadsRun runOnThreads(int threads, const std::string& type, const ops::Attrs& attrs,
                               const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
                               const std::vector<bool>& rank_reduced, std::vector<Tensor>& douts,
                               size_t n_out, bool fast_conv = false) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  ThreadsRun r;
  auto op = ops::OpRegistry::get().create(type, attrs, "t");
  if (!rank_reduced.empty()) op->setRankReducedInputs(rank_reduced);
  for (const Tensor& t : inputs) r.inputs.push_back(t.defined() ? t.clone() : Tensor());
  r.outs.resize(n_out);
  r.grads.resize(inputs.size());
  std::vector<Tensor*> in, out, din;
  for (Tensor& t : r.inputs) in.push_back(t.defined() ? &t : nullptr);
  for (Tensor& t : r.outs) out.push_back(&t);
  ops::RunContext ctx;
  ctx.training = true;
  ctx.fast_conv = fast_conv;
  op->forward(in, out, ctx);
  if (op->differentiable()) {
    if (douts.empty())
      for (size_t k = 0; k < n_out; ++k) douts.push_back(randomTensor(r.outs[k].shape(), 900 + k));
    std::vector<const Tensor*> dout;
    for (const Tensor& t : douts) dout.push_back(&t);
    for (size_t k = 0; k < inputs.size(); ++k)
      din.push_back(k < grad.size() && grad[k] ? &r.grads[k] : nullptr);
    op->backward(in, out, dout, din, ctx);
  }
  omp_set_num_threads(saved);
  return r;
}

inline void expectSameBytes(const Tensor& want, const Tensor& got, const std::string& what) {
  ASSERT_EQ(want.defined(), got.defined()) << what;
  if (!want.defined()) return;
  ASSERT_EQ(want.dtype(), got.dtype()) << what;
  ASSERT_EQ(want.shape(), got.shape()) << what;
  EXPECT_EQ(0, std::memcmp(want.raw(), got.raw(), want.bytes())) << what << " differs";
}

/// Expects op `type` to give the same bits on 1, 2 and 3 threads: outputs,
/// the gradients of the inputs marked in `grad` (backward skipped for an op
/// that is not differentiable) and the inputs as the op left them.
/// `rank_reduced`: Op::setRankReducedInputs (the exact weight-gradient path).
/// `fast_conv`: RunContext::fast_conv of the runs.
inline void expectSameBitsOnThreads(const std::string& type, const ops::Attrs& attrs,
                                    const std::vector<Tensor>& inputs,
                                    const std::vector<bool>& grad, size_t n_out = 1,
                                    const std::vector<bool>& rank_reduced = {},
                                    bool fast_conv = false) {
  std::vector<Tensor> douts;
  const ThreadsRun one =
      runOnThreads(1, type, attrs, inputs, grad, rank_reduced, douts, n_out, fast_conv);
  for (int threads : {2, 3}) {
    const ThreadsRun more =
        runOnThreads(threads, type, attrs, inputs, grad, rank_reduced, douts, n_out, fast_conv);
    const std::string on = " on " + std::to_string(threads) + " threads";
    for (size_t k = 0; k < n_out; ++k)
      expectSameBytes(one.outs[k], more.outs[k], "output " + std::to_string(k) + on);
    for (size_t k = 0; k < inputs.size(); ++k) {
      expectSameBytes(one.grads[k], more.grads[k], "gradient of input " + std::to_string(k) + on);
      expectSameBytes(one.inputs[k], more.inputs[k], "input " + std::to_string(k) + on);
    }
  }
}

}  // namespace slim::test
