// FakeQuantWeight and FakeQuantAct (semantics in quant_ops.h). Both are
// straight-through in backward; their scale/observer inputs are state inputs
// written in place, so the graph buffers always hold the latest scales.
#include <algorithm>
#include <cmath>
#include <string>

#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/config/config.h"
#include "trainer/ops/parallel.h"

namespace slim::compress {
namespace {

int readBits(const ops::Attrs& a) {
  const int64_t b = a.getInt("bits", 8);
  if (b < config::kMinQuantBits || b > config::kMaxQuantBits)
    SLIM_THROW(ModelError, "attribute bits must be in ", config::kMinQuantBits, "..",
               config::kMaxQuantBits, ", got ", b);
  return static_cast<int>(b);
}

// Checks that state input i exists, is float32 and holds n values.
Tensor& stateTensor(const std::vector<Tensor*>& in, size_t i, int64_t n, const std::string& label,
                    const char* what) {
  SLIM_ENFORCE(in.size() > i && in[i], label, ": missing ", what, " input (#", i, ")");
  Tensor& t = *in[i];
  SLIM_ENFORCE(t.dtype() == DType::kF32 && t.numel() == n, label, ": ", what,
               " must be float32 with ", n, " value(s), got ", dtypeName(t.dtype()), " ",
               shapeStr(t.shape()));
  return t;
}

// Straight-through estimator: dx = dy (zeros when no gradient flows in).
void passThrough(const std::vector<Tensor*>& in, const std::vector<const Tensor*>& dout,
                 const std::vector<Tensor*>& din) {
  if (din.empty() || !din[0]) return;
  din[0]->resize(in[0]->shape());
  if (!dout[0]) return din[0]->zero();
  SLIM_ENFORCE(dout[0]->dtype() == din[0]->dtype() && dout[0]->numel() == din[0]->numel(),
               "straight-through gradient of shape ", shapeStr(dout[0]->shape()), " for input ",
               shapeStr(in[0]->shape()));
  if (din[0]->raw() != dout[0]->raw())  // Tensor::copyFrom, over the threads
    ops::detail::parallelCopy(din[0]->raw(), dout[0]->raw(), static_cast<int64_t>(din[0]->bytes()));
}

class FakeQuantWeightOp : public ops::Op {
 public:
  explicit FakeQuantWeightOp(const ops::Attrs& a)
      : bits_(readBits(a)), mode_(a.getString("mode", "channel_wise_abs_max")),
        axis_(a.getInt("axis", 0)) {
    if (mode_ != "abs_max" && mode_ != "channel_wise_abs_max")
      SLIM_THROW(ModelError, "FakeQuantWeight mode must be abs_max or channel_wise_abs_max, got '",
                 mode_, "'");
  }

  std::vector<int> stateInputs() const override { return {1}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing weight input");
    const Tensor& w = *in[0];
    Tensor& y = *out[0];
    y.resize(w.shape());
    if (mode_ == "abs_max") {
      float* s = stateTensor(in, 1, 1, label, "scale").f32();
      s[0] = absMax(w.f32(), w.numel());
      fakeQuantize(w.f32(), y.f32(), w.numel(), s[0], bits_);
      return;
    }
    const detail::ChannelView v = detail::channelView(w, axis_, label);
    float* s = stateTensor(in, 1, v.channels, label, "per-channel scale").f32();
    channelAbsMax(w.f32(), v.outer, v.channels, v.inner, s);
    fakeQuantizeChannels(w.f32(), y.f32(), v.outer, v.channels, v.inner, s, bits_);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    passThrough(in, dout, din);
  }

  // Straight-through: backward reads no values.
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  int bits_;
  std::string mode_;
  int64_t axis_;
};

class FakeQuantActOp : public ops::Op {
 public:
  explicit FakeQuantActOp(const ops::Attrs& a)
      : bits_(readBits(a)), mode_(a.getString("mode", "moving_average_abs_max")),
        rate_(a.getFloat("moving_rate", 0.9f)), window_(a.getInt("window_size", 10000)) {
    if (mode_ != "abs_max" && mode_ != "moving_average_abs_max" && mode_ != "range_abs_max")
      SLIM_THROW(ModelError,
                 "FakeQuantAct mode must be abs_max, moving_average_abs_max or range_abs_max, got '",
                 mode_, "'");
    if (!(rate_ > 0.f && rate_ < 1.f))
      SLIM_THROW(ModelError, "moving_rate must be in (0, 1), got ", rate_);
    if (window_ < 1 || window_ > config::kMaxWindowSize)
      SLIM_THROW(ModelError, "window_size must be in 1..", config::kMaxWindowSize, ", got ",
                 window_);
  }

  std::vector<int> stateInputs() const override {
    if (mode_ == "abs_max") return {1};
    return {1, 2, 3};
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext& ctx) override {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": missing input");
    const Tensor& x = *in[0];
    float& scale = stateTensor(in, 1, 1, label, "scale").f32()[0];
    float s = scale;
    if (ctx.training) {
      float m = in_max_ && in_max_->valid ? in_max_->value : absMax(x.f32(), x.numel());
      // SEMANTICS.md "Synchronisation": global batch abs-max before the update.
      if (ctx.sync) ctx.sync->allreduce(&m, 1, rank_reduction::SyncOp::kMax);
      if (mode_ == "abs_max")
        s = m;
      else if (mode_ == "moving_average_abs_max")
        s = updateMovingAverage(in, m);
      else
        s = updateRange(in, m, scale);
      scale = s;
    } else if (mode_ == "abs_max") {
      s = absMax(x.f32(), x.numel());  // dynamic at inference; buffer untouched
    }
    out[0]->resize(x.shape());
    const bool clip = in_clip_ && in_clip_->valid;
    if (clip) SLIM_ENFORCE(in_max_ && in_max_->valid, label, ": clip without its abs-max");
    fakeQuantize(x.f32(), out[0]->f32(), x.numel(), s, bits_, clip ? &in_clip_->bound : nullptr);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    passThrough(in, dout, din);
  }
  bool backwardIsIdentity() const override { return true; }
  bool readInputAbsMax(const ops::AbsMaxLink* link) override {
    in_max_ = link;
    return true;
  }
  // The clipped values' abs-max must come from the producer too.
  bool readInputClip(const ops::ClipLink* link) override {
    if (link && !in_max_) return false;
    in_clip_ = link;
    return true;
  }

  // Straight-through: backward reads no values.
  bool backwardReadsInput(size_t, const std::vector<bool>&) const override { return false; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  const ops::AbsMaxLink* in_max_ = nullptr;  // max |x| from x's producer (executor)
  const ops::ClipLink* in_clip_ = nullptr;   // x's clip, left to this op (executor)

  // Paddle FindMovingAverageAbsMaxFunctor, in float like the Paddle kernel.
  float updateMovingAverage(const std::vector<Tensor*>& in, float m) {
    float& state = stateTensor(in, 2, 1, label, "moving-average state").f32()[0];
    float& accum = stateTensor(in, 3, 1, label, "moving-average accum").f32()[0];
    state = rate_ * state + 1.f;
    accum = rate_ * accum + m;
    return accum / state;
  }

  // Paddle FindRangeAbsMaxFunctor with the @STEP_COUNTER@ increment before it.
  float updateRange(const std::vector<Tensor*>& in, float cur, float last) {
    float* win = stateTensor(in, 2, window_, label, "range window").f32();
    float& counter = stateTensor(in, 3, 1, label, "range counter").f32()[0];
    SLIM_ENFORCE(counter >= 0.f && counter == std::floor(counter) && counter < 2.f * window_,
                 label, ": range counter must be an integer in [0, 2*window_size), got ",
                 counter);
    int64_t it = static_cast<int64_t>(counter) + 1;
    if (it >= 2 * window_) it -= window_;  // keeps it mod W and min(it, W)
    counter = static_cast<float>(it);
    const int64_t idx = it % window_;
    const float removed = win[idx];
    win[idx] = cur;
    if (last < cur) return cur;
    if (std::fabs(removed - last) < 1e-6) {  // compared in double, as Paddle
      // Paddle's max over the first min(it, W) entries (entry 0 when empty).
      const int64_t size = std::min(it, window_);
      float mx = std::fabs(win[0]);
      for (int64_t i = 1; i < size; ++i) mx = std::max(mx, std::fabs(win[i]));
      return mx;
    }
    return last;
  }

  int bits_;
  std::string mode_;
  float rate_;
  int64_t window_;
};

}  // namespace

detail::ChannelView detail::channelView(const Tensor& w, int64_t axis, const std::string& label) {
  ChannelView v;
  const int r = w.ndim();
  v.axis = axis < 0 ? static_cast<int>(axis) + r : static_cast<int>(axis);
  SLIM_ENFORCE(v.axis >= 0 && v.axis < r, label, ": axis ", axis, " out of range for weight ",
               shapeStr(w.shape()));
  for (int d = 0; d < v.axis; ++d) v.outer *= w.dim(d);
  for (int d = v.axis + 1; d < r; ++d) v.inner *= w.dim(d);
  v.channels = w.dim(v.axis);
  return v;
}

void registerQuantOps(ops::OpRegistry& r) {
  detail::registerBiasQuantOp(r);
  r.addInternal(kFakeQuantWeightOp,
                [](const ops::Attrs& a) { return std::make_unique<FakeQuantWeightOp>(a); });
  r.addInternal(kFakeQuantActOp,
                [](const ops::Attrs& a) { return std::make_unique<FakeQuantActOp>(a); });
  detail::registerPactOp(r);
}

}  // namespace slim::compress
