// Finite-difference Jacobian check for one op (STYLE rule 33): the objective
// L = sum_k <out_k, R_k> with fixed random R_k; analytic dL/din from
// Op::backward is compared with central differences on every input element.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "trainer/ops/op.h"

namespace slim::test {

struct GradCheckOptions {
  float eps = 1e-2f;     ///< finite-difference step
  float atol = 2e-3f;    ///< absolute tolerance
  float rtol = 2e-2f;    ///< relative tolerance
  bool training = true;  ///< RunContext::training
  std::vector<int> skip_inputs;  ///< inputs not to check (e.g. shape tensors)
  /// Check the gradients the op computes for rank-reduced weights (every
  /// input marked, Op::setRankReducedInputs; one rank: no sync).
  bool rank_reduced = false;
};

/// Runs forward once and returns the outputs (deep copies).
inline std::vector<Tensor> runForward(ops::Op& op, std::vector<Tensor>& inputs,
                                      size_t n_out, bool training, Rng* rng = nullptr) {
  ops::RunContext ctx;
  ctx.training = training;
  ctx.rng = rng;
  std::vector<Tensor> outs(n_out);
  std::vector<Tensor*> in, out;
  for (auto& t : inputs) in.push_back(t.defined() ? &t : nullptr);
  for (auto& t : outs) out.push_back(&t);
  op.forward(in, out, ctx);
  std::vector<Tensor> copies;
  for (auto& t : outs) copies.push_back(t.clone());
  return copies;
}

/// Checks op `type` with `attrs` at `inputs` (float inputs are perturbed).
inline void gradCheck(const std::string& type, const ops::Attrs& attrs,
                      std::vector<Tensor> inputs, size_t n_out,
                      const GradCheckOptions& opt = {}) {
  auto op = ops::OpRegistry::get().create(type, attrs, "gradcheck");
  if (opt.rank_reduced) op->setRankReducedInputs(std::vector<bool>(inputs.size(), true));
  Rng rng(1234);
  // Objective weights.
  std::vector<Tensor> base = runForward(*op, inputs, n_out, opt.training);
  std::vector<Tensor> weights;
  for (auto& o : base) {
    Tensor w(o.shape());
    if (o.dtype() == DType::kF32)
      for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng.uniform() * 2.f - 1.f;
    weights.push_back(w);
  }
  auto objective = [&](std::vector<Tensor>& in) {
    auto outs = runForward(*op, in, n_out, opt.training);
    double s = 0;
    for (size_t k = 0; k < outs.size(); ++k) {
      if (outs[k].dtype() != DType::kF32) continue;
      for (int64_t i = 0; i < outs[k].numel(); ++i)
        s += static_cast<double>(outs[k].f32()[i]) * weights[k].f32()[i];
    }
    return s;
  };
  // Analytic gradients.
  ops::RunContext ctx;
  ctx.training = opt.training;
  std::vector<Tensor> outs(n_out);
  std::vector<Tensor*> in, out, din;
  std::vector<const Tensor*> dout;
  for (auto& t : inputs) in.push_back(t.defined() ? &t : nullptr);
  for (auto& t : outs) out.push_back(&t);
  op->forward(in, out, ctx);
  for (size_t k = 0; k < n_out; ++k)
    dout.push_back(outs[k].dtype() == DType::kF32 ? &weights[k] : nullptr);
  std::vector<Tensor> grads(inputs.size());
  auto nondiff = op->nonDiffInputs();
  for (int s : op->stateInputs()) nondiff.push_back(s);
  auto skipped = [&](size_t j) {
    for (int s : opt.skip_inputs) if (s == static_cast<int>(j)) return true;
    for (int s : nondiff) if (s == static_cast<int>(j)) return true;
    return !inputs[j].defined() || inputs[j].dtype() != DType::kF32;
  };
  for (size_t j = 0; j < inputs.size(); ++j) din.push_back(skipped(j) ? nullptr : &grads[j]);
  op->backward(in, out, dout, din, ctx);
  // Numeric gradients.
  for (size_t j = 0; j < inputs.size(); ++j) {
    if (skipped(j)) continue;
    ASSERT_TRUE(grads[j].defined()) << type << ": no gradient for input " << j;
    ASSERT_EQ(grads[j].numel(), inputs[j].numel()) << type << " input " << j;
    for (int64_t i = 0; i < inputs[j].numel(); ++i) {
      float* p = inputs[j].f32() + i;
      const float orig = *p;
      *p = orig + opt.eps;
      double up = objective(inputs);
      *p = orig - opt.eps;
      double down = objective(inputs);
      *p = orig;
      double numeric = (up - down) / (2.0 * opt.eps);
      double analytic = grads[j].f32()[i];
      double tol = opt.atol + opt.rtol * std::max(std::fabs(numeric), std::fabs(analytic));
      ASSERT_NEAR(analytic, numeric, tol)
          << type << ": d(out)/d(input " << j << ")[" << i << "]";
    }
  }
}

/// A float tensor with uniform values in [lo, hi) from `seed`.
inline Tensor randomTensor(Shape shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(std::move(shape));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

}  // namespace slim::test
