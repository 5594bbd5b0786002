// The exact GELU of a PyTorch export, y = (erf(x / a) + b) * x * c (a = sqrt(2),
// b = 1, c = 0.5), run as one op where the ONNX graph has five (Div, Erf,
// Add, Mul, Mul): one pass over the tensor instead of five forward and five
// backward, and backward keeps x alone instead of x and erf(x / a) + b.
// The executor substitutes it (graph/executor_fuse.cc); the graph, and so the
// export, keeps the five nodes. Every step is the float operation the five
// ops make, in their order, so forward and backward give their bits:
//   forward:  d = x / a; e = fastErf(d); s = e + b; m = s * x; y = m * c
//   backward: gm = g * c; ds = gm * x; dx1 = gm * s;
//             dd = fastExp(-d * d) * (2 / sqrt(pi)) * ds; dx2 = dd / a;
//             dx = dx1 + dx2 (the executor adds x's two contributions; the
//             sum of two floats does not depend on their order).
// dx1 goes through memory before the sum: a multiply feeding an add in one
// expression may be contracted into an FMA (GCC's -ffp-contract=fast), which
// rounds once where the five ops round twice.
#include "trainer/ops/fused_ops.h"

#include <algorithm>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/fast_math.h"
#include "trainer/ops/op_preamble.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

constexpr float kTwoOverSqrtPi = 1.1283791670955126f;  // as math_ops.cc's Erf
constexpr int64_t kBlock = 1024;                       // dx1 staged per block

class ErfGeluOp : public Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() == 4 && in[0] && in[1] && in[2] && in[3], label,
                 ": fused GELU needs x and three scalar constants");
    const Tensor& x = *in[0];
    requireF32(x, label);
    const float a = scalar(*in[1]), b = scalar(*in[2]), c = scalar(*in[3]);
    // The nodes' output shape: x's, with leading 1s where a constant has
    // more dimensions (the same elements in the same order).
    Shape ys = x.shape();
    for (int k = 1; k < 4; ++k) ys = broadcastShape(ys, in[k]->shape());
    out[0]->resize(ys);
    const float* xp = x.f32();
    float* yp = out[0]->f32();
    detail::parallelRange(x.numel(), detail::kGrainCostly, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const float m = (fastErf(xp[i] / a) + b) * xp[i];
        yp[i] = m * c;
      }
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    if (!beginUnaryBackward(in, dout, din)) return;
    const float a = scalar(*in[1]), b = scalar(*in[2]), c = scalar(*in[3]);
    const float* xp = in[0]->f32();
    const float* g = dout[0]->f32();
    float* dx = din[0]->f32();
    detail::parallelRange(in[0]->numel(), detail::kGrainCostly, [&](int64_t s, int64_t e) {
      for (int64_t b0 = s; b0 < e; b0 += kBlock) {
        const int64_t b1 = std::min(e, b0 + kBlock);
        for (int64_t i = b0; i < b1; ++i) {  // dx1 = (g * c) * (erf(x / a) + b)
          const float gm = g[i] * c;
          dx[i] = gm * (fastErf(xp[i] / a) + b);
        }
        for (int64_t i = b0; i < b1; ++i) {
          const float d = xp[i] / a;
          const float ds = g[i] * c * xp[i];
          const float dx2 = fastExp(-d * d) * kTwoOverSqrtPi * ds / a;
          dx[i] = dx[i] + dx2;
        }
      }
    });
  }

  std::vector<int> nonDiffInputs() const override { return {1, 2, 3}; }
  bool backwardReadsInput(size_t i, const std::vector<bool>&) const override { return i == 0; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  float scalar(const Tensor& t) const {
    SLIM_ENFORCE(t.dtype() == DType::kF32 && t.numel() == 1, label,
                 ": fused GELU constant must be a float scalar, got ", shapeStr(t.shape()));
    return t.f32()[0];
  }
};

class NoOp : public Op {
 public:
  void forward(const std::vector<Tensor*>&, const std::vector<Tensor*>&, RunContext&) override {}
  void backward(const std::vector<Tensor*>&, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>&, const std::vector<Tensor*>&,
                RunContext&) override {}
  bool differentiable() const override { return false; }
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }
};

}  // namespace

std::unique_ptr<Op> makeErfGelu(const std::string& label) {
  auto op = std::make_unique<ErfGeluOp>();
  op->label = label;
  return op;
}

std::unique_ptr<Op> makeNoOp(const std::string& label) {
  auto op = std::make_unique<NoOp>();
  op->label = label;
  return op;
}

}  // namespace slim::ops
