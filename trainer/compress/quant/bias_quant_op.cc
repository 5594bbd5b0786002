// FakeQuantBias (quant_ops.h): the bias of a quantized Conv / Gemm as the
// deployed integer model adds it. The QDQ export stores it as int32 levels
// on step_x * step_w[c] (what ONNX Runtime's QLinearConv / QGemm add to the
// int32 accumulator); this op gives training and evaluation the same value,
// level * step in float, so the fake-quant forward and the exported model
// compute the same bits (docs/QUANTIZATION.md).
#include <string>
#include <vector>

#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/config/config.h"

namespace slim::compress {
namespace {

int readBitsAttr(const ops::Attrs& a, const char* key) {
  const int64_t b = a.getInt(key, 8);
  if (b < config::kMinQuantBits || b > config::kMaxQuantBits)
    SLIM_THROW(ModelError, "FakeQuantBias attribute ", key, " must be in ", config::kMinQuantBits,
               "..", config::kMaxQuantBits, ", got ", b);
  return static_cast<int>(b);
}

class FakeQuantBiasOp : public ops::Op {
 public:
  explicit FakeQuantBiasOp(const ops::Attrs& a)
      : act_bits_(readBitsAttr(a, "activation_bits")), bits_(readBitsAttr(a, "bits")),
        mode_(a.getString("mode", "channel_wise_abs_max")), axis_(a.getInt("axis", 0)) {
    if (mode_ != "abs_max" && mode_ != "channel_wise_abs_max")
      SLIM_THROW(ModelError, "FakeQuantBias mode must be abs_max or channel_wise_abs_max, got '",
                 mode_, "'");
  }

  // Only the bias is differentiable: the weight and the activation scale are
  // read for their steps.
  std::vector<int> nonDiffInputs() const override { return {1, 2}; }
  bool backwardIsIdentity() const override { return true; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    SLIM_ENFORCE(in.size() == 3 && in[0] && in[1] && in[2], label,
                 ": expects inputs [bias, weight, activation scale]");
    const Tensor& b = *in[0];  // b: (C)
    const Tensor& w = *in[1];
    ops::requireF32(b, label, "bias");
    ops::requireF32(w, label, "weight");
    ops::requireF32(*in[2], label, "activation scale");
    SLIM_ENFORCE(in[2]->numel() == 1, label, ": activation scale must hold 1 value, has ",
                 in[2]->numel());
    const int64_t C = b.numel();
    const float act_step = exportActivationStep(in[2]->f32()[0], act_bits_);
    // Weight steps: the FakeQuantWeight forward's, from the same weights.
    steps_.assign(1, 0.f);
    if (mode_ == "channel_wise_abs_max") {
      const detail::ChannelView v = detail::channelView(w, axis_, label);
      SLIM_ENFORCE(v.channels == C, label, ": bias has ", C, " values, weight ",
                   shapeStr(w.shape()), " has ", v.channels, " channels along axis ", v.axis);
      steps_.resize(static_cast<size_t>(C));
      channelAbsMax(w.f32(), v.outer, C, v.inner, steps_.data());
    } else {
      steps_[0] = absMax(w.f32(), w.numel());
    }
    for (float& s : steps_) s = quantStep(s, bits_);
    Tensor& y = *out[0];
    y.resize(b.shape());
    for (int64_t c = 0; c < C; ++c) {
      const float st = biasStep(act_step, steps_[steps_.size() > 1 ? static_cast<size_t>(c) : 0]);
      y.f32()[c] = static_cast<float>(quantizeBias(b.f32()[c], st)) * st;
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    if (din.empty() || !din[0]) return;  // straight-through: db = dy
    din[0]->resize(in[0]->shape());
    if (dout[0])
      din[0]->copyFrom(*dout[0]);
    else
      din[0]->zero();
  }

 private:
  int act_bits_, bits_;
  std::string mode_;
  int64_t axis_;
  std::vector<float> steps_;  // per channel (or one): scratch
};

}  // namespace

namespace detail {

void registerBiasQuantOp(ops::OpRegistry& r) {
  r.addInternal(kFakeQuantBiasOp,
                [](const ops::Attrs& a) { return std::make_unique<FakeQuantBiasOp>(a); });
}

}  // namespace detail
}  // namespace slim::compress
