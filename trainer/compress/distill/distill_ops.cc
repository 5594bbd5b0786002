// DistillL2Loss and SoftLabelLoss kernels. Sums are accumulated in double so
// the scalar losses do not depend on the summation order's rounding much;
// rows of SoftLabelLoss are independent (max-subtracted log-softmax per row).
#include "trainer/compress/distill/distill_ops.h"

#include <algorithm>
#include <cmath>

namespace slim::compress {
namespace {

// Inputs (teacher, student): both there, float32, of one shape.
void checkTeacherStudent(const std::string& label, const std::vector<Tensor*>& in) {
  SLIM_ENFORCE(in.size() == 2 && in[0] && in[1], label, ": needs (teacher, student)");
  const Tensor& t = *in[0];
  const Tensor& s = *in[1];
  if (t.shape() != s.shape())
    SLIM_THROW(ShapeError, label, ": teacher tensor has shape ", shapeStr(t.shape()),
               " but student tensor has shape ", shapeStr(s.shape()),
               "; a distillation pair needs equal shapes");
  SLIM_ENFORCE(t.dtype() == DType::kF32 && s.dtype() == DType::kF32, label,
               ": distillation inputs must be float32");
}

// mean((s - t)^2) over all elements.
class L2LossOp : public ops::Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    checkTeacherStudent(label, in);
    const Tensor& t = *in[0];
    const Tensor& s = *in[1];
    const int64_t n = s.numel();
    SLIM_ENFORCE_GT(n, 0, label, ": empty tensors");
    const float* tp = t.f32();
    const float* sp = s.f32();
    // Eight running sums (lanes of one vector loop; one chain of dependent
    // adds ran ~8x slower), added in a fixed order: the same value for any
    // thread count.
    double acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; ++l) {
        const double d = static_cast<double>(sp[i + l]) - tp[i + l];
        acc[l] += d * d;
      }
    for (; i < n; ++i) {
      const double d = static_cast<double>(sp[i]) - tp[i];
      acc[0] += d * d;
    }
    const double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                       ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    out[0]->resize({});
    out[0]->f32()[0] = static_cast<float>(sum / static_cast<double>(n));
  }

  // dL/ds = 2 (s - t) / n · g, dL/dt = -dL/ds.
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    const Tensor& t = *in[0];
    const Tensor& s = *in[1];
    const int64_t n = s.numel();
    const float g = dout[0] ? dout[0]->f32()[0] : 0.f;
    const float k = 2.f * g / static_cast<float>(n);
    const float* tp = t.f32();
    const float* sp = s.f32();
    if (din.size() > 1 && din[1]) {
      din[1]->resize(s.shape());
      float* d = din[1]->f32();
      for (int64_t i = 0; i < n; ++i) d[i] = k * (sp[i] - tp[i]);
    }
    if (!din.empty() && din[0]) {
      din[0]->resize(t.shape());
      float* d = din[0]->f32();
      for (int64_t i = 0; i < n; ++i) d[i] = k * (tp[i] - sp[i]);
    }
  }
};

// Row-wise log-softmax of x / T: y[c] = x[c]/T - logsumexp(x/T).
void logSoftmaxRow(const float* x, float* y, int64_t C, float inv_t) {
  float mx = x[0] * inv_t;
  for (int64_t c = 1; c < C; ++c) mx = std::max(mx, x[c] * inv_t);
  double z = 0;
  for (int64_t c = 0; c < C; ++c) z += std::exp(static_cast<double>(x[c] * inv_t - mx));
  const float lse = mx + static_cast<float>(std::log(z));
  for (int64_t c = 0; c < C; ++c) y[c] = x[c] * inv_t - lse;
}

// mean over rows of -sum_c q_c log p_c, p = softmax(s/T), q = softmax(t/T).
class SoftLabelLossOp : public ops::Op {
 public:
  explicit SoftLabelLossOp(const ops::Attrs& a) : temperature_(a.getFloat("temperature", 1.f)) {
    if (!(temperature_ > 0.f) || !std::isfinite(temperature_))
      SLIM_THROW(ModelError, "SoftLabelLoss: temperature must be > 0, got ", temperature_);
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    checkTeacherStudent(label, in);
    const Tensor& t = *in[0];
    const Tensor& s = *in[1];
    SLIM_ENFORCE_GE(s.ndim(), 1, label, ": logits need a class axis");
    C_ = s.dim(-1);
    SLIM_ENFORCE_GT(C_, 0, label, ": no classes in ", shapeStr(s.shape()));
    R_ = s.numel() / C_;
    SLIM_ENFORCE_GT(R_, 0, label, ": no rows in ", shapeStr(s.shape()));
    const float inv_t = 1.f / temperature_;
    // logp_, logq_: (R, C)
    logp_.resize({R_, C_});
    logq_.resize({R_, C_});
    double acc = 0;
    for (int64_t r = 0; r < R_; ++r) {
      float* lp = logp_.f32() + r * C_;
      float* lq = logq_.f32() + r * C_;
      logSoftmaxRow(s.f32() + r * C_, lp, C_, inv_t);
      logSoftmaxRow(t.f32() + r * C_, lq, C_, inv_t);
      double row = 0;
      for (int64_t c = 0; c < C_; ++c) row -= std::exp(static_cast<double>(lq[c])) * lp[c];
      acc += row;
    }
    out[0]->resize({});
    out[0]->f32()[0] = static_cast<float>(acc / static_cast<double>(R_));
  }

  // With k = g / (R T):
  //   dL/ds_j = k (p_j - q_j)
  //   dL/dt_j = -k q_j (log p_j - sum_c q_c log p_c)
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    const float g = dout[0] ? dout[0]->f32()[0] : 0.f;
    const float k = g / (static_cast<float>(R_) * temperature_);
    const bool want_s = din.size() > 1 && din[1];
    const bool want_t = !din.empty() && din[0];
    if (want_s) din[1]->resize(in[1]->shape());
    if (want_t) din[0]->resize(in[0]->shape());
    for (int64_t r = 0; r < R_; ++r) {
      const float* lp = logp_.f32() + r * C_;
      const float* lq = logq_.f32() + r * C_;
      if (want_s) {
        float* d = din[1]->f32() + r * C_;
        for (int64_t c = 0; c < C_; ++c) d[c] = k * (std::exp(lp[c]) - std::exp(lq[c]));
      }
      if (want_t) {
        double cross = 0;  // sum_c q_c log p_c
        for (int64_t c = 0; c < C_; ++c) cross += std::exp(static_cast<double>(lq[c])) * lp[c];
        float* d = din[0]->f32() + r * C_;
        for (int64_t c = 0; c < C_; ++c)
          d[c] = -k * std::exp(lq[c]) * (lp[c] - static_cast<float>(cross));
      }
    }
  }

 private:
  float temperature_;
  int64_t R_ = 0, C_ = 0;
  Tensor logp_, logq_;  // (R, C) log-probabilities of the last forward
};

}  // namespace

void registerDistillOps(ops::OpRegistry& r) {
  r.addInternal("DistillL2Loss", [](const ops::Attrs&) { return std::make_unique<L2LossOp>(); });
  r.addInternal("SoftLabelLoss",
                [](const ops::Attrs& a) { return std::make_unique<SoftLabelLossOp>(a); });
}

}  // namespace slim::compress
