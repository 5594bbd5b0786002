// Optimizer base (state bookkeeping, coupled decay) and the four Paddle
// update rules. Arithmetic is float32 in Paddle's operation order so a run
// can be compared with Paddle's CPU kernels step by step.
#include "trainer/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "trainer/core/threads.h"

namespace slim::optim {

namespace {

// The element-wise rules run over the threads (parallelRange) for
// parameters of at least kGrain values a thread: any split gives the same
// bits, and a serial update of every parameter would cap the thread scaling
// (mobilenet_v2: 3.5M parameters, 70 MB read and written a step).
constexpr int64_t kGrain = int64_t{1} << 16;

}  // namespace

// ---- base: state and decay ------------------------------------------------

Tensor Optimizer::initSlot(const std::string&, const Tensor& param) const {
  return Tensor(param.shape(), DType::kF32);
}

void Optimizer::slotsFor(const std::string& name, const Tensor& param,
                         std::vector<Tensor*>& out) {
  out.clear();
  bool& checked = checked_[name];
  for (const std::string& slot : slots()) {
    const std::string key = name + "/" + slot;
    auto it = state_.find(key);
    if (it == state_.end()) {
      it = state_.emplace(key, initSlot(slot, param)).first;
    } else if (!checked) {
      // State restored by loadState: must fit this parameter.
      const Tensor want = initSlot(slot, param);
      if (it->second.numel() != want.numel() || it->second.dtype() != DType::kF32)
        SLIM_THROW(ShapeError, type(), " state '", key, "' has shape ",
                   shapeStr(it->second.shape()), " ", dtypeName(it->second.dtype()),
                   " but parameter '", name, "' needs ", shapeStr(want.shape()),
                   " float32");
    }
    out.push_back(&it->second);
  }
  checked = true;
}

void Optimizer::step(const std::string& name, Tensor& param, const Tensor& grad,
                     float lr) {
  if (param.dtype() != DType::kF32 || grad.dtype() != DType::kF32 ||
      param.numel() != grad.numel())
    SLIM_THROW(ShapeError, type(), ": parameter '", name, "' ",
               shapeStr(param.shape()), " ", dtypeName(param.dtype()),
               " does not match its gradient ", shapeStr(grad.shape()), " ",
               dtypeName(grad.dtype()));
  std::vector<Tensor*> slots;
  slotsFor(name, param, slots);
  float* p = param.f32();
  const float* g = grad.f32();
  const int64_t n = param.numel();
  if (l2_ != 0.0f || l1_ != 0.0f) {
    // Coupled regularisation, as Paddle appends it to the gradient.
    decayed_.resize(static_cast<size_t>(n));
    parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float d = g[i];
        if (l2_ != 0.0f) d += l2_ * p[i];
        if (l1_ != 0.0f) d += l1_ * static_cast<float>((p[i] > 0) - (p[i] < 0));
        decayed_[i] = d;
      }
    });
    g = decayed_.data();
  }
  update(p, g, n, slots, lr);
}

void Optimizer::step(const std::vector<ParamRef>& params, float lr) {
  for (const ParamRef& r : params) {
    SLIM_ENFORCE(r.param && r.grad, "optimizer step: null tensor for '", r.name, "'");
    step(r.name, *r.param, *r.grad, lr);
  }
  ++steps_;
}

std::map<std::string, Tensor> Optimizer::state() const {
  std::map<std::string, Tensor> out = state_;
  Tensor s(Shape{}, DType::kI64);
  s.data<int64_t>()[0] = steps_;
  out["step"] = s;
  return out;
}

void Optimizer::loadState(const std::map<std::string, Tensor>& state) {
  const std::vector<std::string> known = slots();
  std::map<std::string, Tensor> next;
  int64_t steps = -1;
  for (const auto& [key, t] : state) {
    const size_t cut = key.rfind('/');
    if (cut == std::string::npos) {
      if (key != "step")
        SLIM_THROW(CheckpointError, type(), " state: unknown scalar entry '", key, "'");
      if (t.dtype() != DType::kI64 || t.numel() != 1)
        SLIM_THROW(CheckpointError, type(), " state 'step' must be one int64, got ",
                   dtypeName(t.dtype()), shapeStr(t.shape()));
      steps = t.data<int64_t>()[0];
      continue;
    }
    const std::string slot = key.substr(cut + 1);
    if (std::find(known.begin(), known.end(), slot) == known.end())
      SLIM_THROW(CheckpointError, type(), " state: unknown slot '", slot,
                 "' in entry '", key, "' (a checkpoint of another optimizer?)");
    if (t.dtype() != DType::kF32)
      SLIM_THROW(CheckpointError, type(), " state '", key, "' must be float32, got ",
                 dtypeName(t.dtype()));
    next[key] = t.clone();
  }
  if (steps < 0) SLIM_THROW(CheckpointError, type(), " state has no 'step' entry");
  state_ = std::move(next);
  checked_.clear();
  steps_ = steps;
}

// ---- the update rules -----------------------------------------------------

namespace {

class Sgd : public Optimizer {
 public:
  Sgd(float l2, float l1) : Optimizer(l2, l1) {}
  std::string type() const override { return "SGD"; }

 protected:
  std::vector<std::string> slots() const override { return {}; }
  void update(float* p, const float* g, int64_t n, std::vector<Tensor*>&,
              float lr) override {
    parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] -= lr * g[i];
    });
  }
};

class Momentum : public Optimizer {
 public:
  Momentum(float mu, bool nesterov, float l2, float l1)
      : Optimizer(l2, l1), mu_(mu), nesterov_(nesterov) {}
  std::string type() const override { return "Momentum"; }

 protected:
  std::vector<std::string> slots() const override { return {"velocity"}; }
  void update(float* p, const float* g, int64_t n, std::vector<Tensor*>& s,
              float lr) override {
    float* v = s[0]->f32();
    parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        v[i] = mu_ * v[i] + g[i];
        p[i] -= nesterov_ ? (g[i] + v[i] * mu_) * lr : lr * v[i];
      }
    });
  }

 private:
  float mu_;
  bool nesterov_;
};

class Adam : public Optimizer {
 public:
  /// `decoupled` is AdamW's coeff; `adamw` only names the class.
  Adam(float b1, float b2, float eps, float l2, float l1, float decoupled,
       bool adamw)
      : Optimizer(l2, l1), b1_(b1), b2_(b2), eps_(eps), coeff_(decoupled),
        adamw_(adamw) {}
  std::string type() const override { return adamw_ ? "AdamW" : "Adam"; }

 protected:
  std::vector<std::string> slots() const override {
    return {"moment1", "moment2", "beta1_pow", "beta2_pow"};
  }
  Tensor initSlot(const std::string& slot, const Tensor& param) const override {
    if (slot == "beta1_pow") return Tensor::fromVector({1}, {b1_});
    if (slot == "beta2_pow") return Tensor::fromVector({1}, {b2_});
    return Tensor(param.shape(), DType::kF32);
  }
  void update(float* p, const float* g, int64_t n, std::vector<Tensor*>& s,
              float lr) override {
    float* m = s[0]->f32();
    float* u = s[1]->f32();
    float& b1_pow = s[2]->f32()[0];
    float& b2_pow = s[3]->f32()[0];
    // AdamW: decoupled decay with the un-corrected lr, before the Adam step.
    const float lr_t = lr * std::sqrt(1.0f - b2_pow) / (1.0f - b1_pow);
    const float eps_t = eps_ * std::sqrt(1.0f - b2_pow);
    parallelRange(n, kGrain, [&](int64_t b, int64_t e) {
      if (coeff_ != 0.0f)
        for (int64_t i = b; i < e; ++i) p[i] -= lr * coeff_ * p[i];
      for (int64_t i = b; i < e; ++i) {
        m[i] = b1_ * m[i] + (1.0f - b1_) * g[i];
        u[i] = b2_ * u[i] + (1.0f - b2_) * g[i] * g[i];
        p[i] -= lr_t * (m[i] / (std::sqrt(u[i]) + eps_t));
      }
    });
    b1_pow *= b1_;
    b2_pow *= b2_;
  }

 private:
  float b1_, b2_, eps_, coeff_;
  bool adamw_;
};

void checkRange(const char* what, float v, float lo, float hi, bool hi_open) {
  if (!(v >= lo && (hi_open ? v < hi : v <= hi)))
    SLIM_THROW(ConfigError, "optimizer: ", what, " = ", v, " outside [", lo, ", ",
               hi, hi_open ? ")" : "]");
}

}  // namespace

std::unique_ptr<Optimizer> makeOptimizer(const OptimizerSpec& spec) {
  const bool adamw = spec.type == "AdamW";
  const float wd = spec.weight_decay.value_or(adamw ? 0.01f : 0.0f);
  checkRange("weight_decay", wd, 0.0f, 1.0f, false);
  checkRange("l1_decay", spec.l1_decay, 0.0f, 1.0f, false);
  const float l1 = spec.l1_decay;
  if (spec.type == "SGD") return std::make_unique<Sgd>(wd, l1);
  if (spec.type == "Momentum") {
    checkRange("momentum", spec.momentum, 0.0f, 1.0f, true);
    return std::make_unique<Momentum>(spec.momentum, spec.use_nesterov, wd, l1);
  }
  if (spec.type == "Adam" || adamw) {
    checkRange("beta1", spec.beta1, 0.0f, 1.0f, true);
    checkRange("beta2", spec.beta2, 0.0f, 1.0f, true);
    checkRange("epsilon", spec.epsilon, 0.0f, 1.0f, false);
    return std::make_unique<Adam>(spec.beta1, spec.beta2, spec.epsilon,
                                  adamw ? 0.0f : wd, l1, adamw ? wd : 0.0f, adamw);
  }
  SLIM_THROW(ConfigError, "optimizer type '", spec.type,
             "' is not supported (known: SGD, Momentum, Adam, AdamW)");
}

}  // namespace slim::optim
