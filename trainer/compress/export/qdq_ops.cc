// QuantizeLinear / DequantizeLinear kernels (see qdq_ops.h). Rounding is
// std::nearbyint under the default rounding mode (ties to even), the rule of
// ONNX and of slimtrain's fake quantizers.
#include "trainer/compress/export/qdq_ops.h"

#include <algorithm>
#include <cmath>

namespace slim::compress {
namespace {

// Layout of x seen by a scale: (outer, C, inner); C = 1 for per tensor.
struct AxisView {
  int64_t outer = 1, C = 1, inner = 1;
};

AxisView axisView(const Tensor& x, const Tensor& scale, int64_t axis, const std::string& label) {
  AxisView v;
  if (scale.numel() == 1 && scale.ndim() <= 1) {
    v.inner = x.numel();
    return v;
  }
  SLIM_ENFORCE(scale.ndim() == 1, label, ": scale must be a scalar or 1-D, has shape ",
               shapeStr(scale.shape()));
  const int64_t a = axis < 0 ? axis + x.ndim() : axis;
  SLIM_ENFORCE(a >= 0 && a < x.ndim(), label, ": axis ", axis, " out of range for shape ",
               shapeStr(x.shape()));
  SLIM_ENFORCE_EQ(x.dim(static_cast<int>(a)), scale.numel(), label,
                  ": scale length must equal x's size along axis ", a);
  for (int64_t d = 0; d < a; ++d) v.outer *= x.dim(static_cast<int>(d));
  v.C = scale.numel();
  for (int64_t d = a + 1; d < x.ndim(); ++d) v.inner *= x.dim(static_cast<int>(d));
  return v;
}

// Zero point of channel c as an integer (0 when absent).
int64_t zeroPoint(const Tensor* zp, int64_t c) {
  if (zp == nullptr || !zp->defined() || zp->numel() == 0) return 0;
  const int64_t i = zp->numel() == 1 ? 0 : c;
  switch (zp->dtype()) {
    case DType::kU8: return zp->data<uint8_t>()[i];
    case DType::kI8: return zp->data<int8_t>()[i];
    case DType::kI32: return zp->data<int32_t>()[i];
    case DType::kI64: return zp->data<int64_t>()[i];  // widened int32 initializer
    default: SLIM_THROW(ModelError, "zero point of dtype ", dtypeName(zp->dtype()),
                        " is not supported (uint8, int8, int32)");
  }
}

// What QuantizeLinear and DequantizeLinear share: the axis attribute, no
// gradient, and the inputs x, scale and the optional zero point.
class QdqOp : public ops::Op {
 public:
  explicit QdqOp(const ops::Attrs& a) : axis_(a.getInt("axis", 1)) {}
  bool differentiable() const override { return false; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    run(*in[0], *in[1], in.size() > 2 ? in[2] : nullptr, out);
  }

 protected:
  /// The kernel: y = out[0] from x, scale and zp (null when absent).
  virtual void run(const Tensor& x, const Tensor& scale, const Tensor* zp,
                   const std::vector<Tensor*>& out) = 0;

  int64_t axis_;
};

class QuantizeLinearOp : public QdqOp {
 public:
  using QdqOp::QdqOp;

 protected:
  void run(const Tensor& x, const Tensor& scale, const Tensor* zp,
           const std::vector<Tensor*>& out) override {
    ops::requireF32(x, label);
    ops::requireF32(scale, label, "scale");
    const DType dt = zp ? zp->dtype() : DType::kU8;
    SLIM_ENFORCE(dt == DType::kU8 || dt == DType::kI8, label,
                 ": zero point must be uint8 or int8, is ", dtypeName(dt));
    const float lo = dt == DType::kU8 ? 0.f : -128.f, hi = dt == DType::kU8 ? 255.f : 127.f;
    const AxisView v = axisView(x, scale, axis_, label);
    out[0]->resize(x.shape(), dt);
    if (dt == DType::kU8)
      quantize(x.f32(), scale.f32(), zp, v, lo, hi, out[0]->data<uint8_t>());
    else
      quantize(x.f32(), scale.f32(), zp, v, lo, hi, out[0]->data<int8_t>());
  }

 private:
  // The element loop, typed pointers fetched once (T: uint8_t or int8_t).
  template <class T>
  static void quantize(const float* xp, const float* scale, const Tensor* zp, const AxisView& v,
                       float lo, float hi, T* q) {
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t c = 0; c < v.C; ++c) {
        const float s = scale[c];
        const float z = static_cast<float>(zeroPoint(zp, c));
        const int64_t base = (o * v.C + c) * v.inner;
        for (int64_t i = 0; i < v.inner; ++i)
          q[base + i] = static_cast<T>(std::clamp(std::nearbyint(xp[base + i] / s) + z, lo, hi));
      }
  }
};

class DequantizeLinearOp : public QdqOp {
 public:
  using QdqOp::QdqOp;

 protected:
  void run(const Tensor& x, const Tensor& scale, const Tensor* zp,
           const std::vector<Tensor*>& out) override {
    ops::requireF32(scale, label, "scale");
    const AxisView v = axisView(x, scale, axis_, label);
    out[0]->resize(x.shape(), DType::kF32);
    float* y = out[0]->f32();
    const float* s = scale.f32();
    switch (x.dtype()) {
      case DType::kU8: return dequantize(x.data<uint8_t>(), s, zp, v, y);
      case DType::kI8: return dequantize(x.data<int8_t>(), s, zp, v, y);
      case DType::kI32: return dequantize(x.data<int32_t>(), s, zp, v, y);
      // The ONNX importer widens int32 initializers (an exported int32 bias).
      case DType::kI64: return dequantize(x.data<int64_t>(), s, zp, v, y);
      default: SLIM_THROW(ModelError, label, ": input of dtype ", dtypeName(x.dtype()),
                          " is not supported (uint8, int8, int32)");
    }
  }

 private:
  // The element loop, typed pointers fetched once.
  template <class T>
  static void dequantize(const T* x, const float* scale, const Tensor* zp, const AxisView& v,
                         float* y) {
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t c = 0; c < v.C; ++c) {
        const float s = scale[c];
        const int64_t z = zeroPoint(zp, c);
        const int64_t base = (o * v.C + c) * v.inner;
        for (int64_t i = 0; i < v.inner; ++i)
          y[base + i] = static_cast<float>(static_cast<int64_t>(x[base + i]) - z) * s;
      }
  }
};

}  // namespace

void registerQdqOps(ops::OpRegistry& r) {
  r.add("QuantizeLinear",
        [](const ops::Attrs& a) { return std::make_unique<QuantizeLinearOp>(a); });
  r.add("DequantizeLinear",
        [](const ops::Attrs& a) { return std::make_unique<DequantizeLinearOp>(a); });
}

}  // namespace slim::compress
