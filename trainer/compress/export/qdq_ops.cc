// QuantizeLinear / DequantizeLinear kernels (see qdq_ops.h). Rounding is
// std::nearbyint under the default rounding mode (ties to even), the rule of
// ONNX and of slimtrain's fake quantizers.
#include "trainer/compress/export/qdq_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "trainer/ops/parallel.h"

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

// Every channel's zero point (zeroPoint), looked up once per call.
std::vector<int64_t> zeroPoints(const Tensor* zp, int64_t C) {
  std::vector<int64_t> z(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) z[static_cast<size_t>(c)] = zeroPoint(zp, c);
  return z;
}

// Calls f(c, e0, e1) for the elements [e0, e1) of x's layout `v` that lie in
// [b, e), cut at each block of `inner` elements (one channel c of one outer
// index). Elements are independent: threads take disjoint ranges.
template <class F>
void forBlocks(const AxisView& v, int64_t b, int64_t e, F&& f) {
  if (v.inner <= 0) return;
  for (int64_t k = b; k < e;) {
    const int64_t blk = k / v.inner, end = std::min(e, (blk + 1) * v.inner);
    f(blk % v.C, k, end);
    k = end;
  }
}

// Elements per thread at least (parallel.h: memory-bound loops).
constexpr int64_t kGrain = ops::detail::kGrainCheap;

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
  // Element ranges over the threads (each value computed alone).
  template <class T>
  static void quantize(const float* xp, const float* scale, const Tensor* zp, const AxisView& v,
                       float lo, float hi, T* q) {
    if (v.outer * v.C * v.inner == 0) return;
    const std::vector<int64_t> zs = zeroPoints(zp, v.C);
    ops::detail::parallelRange(v.outer * v.C * v.inner, kGrain, [&](int64_t b, int64_t e) {
      forBlocks(v, b, e, [&, lo, hi](int64_t c, int64_t i0, int64_t i1) {
        // Locals: stores through T* (a char type) could alias captured ones.
        const float* __restrict xs = xp;
        T* __restrict qs = q;
        const float s = scale[c];
        const float z = static_cast<float>(zs[static_cast<size_t>(c)]);
        for (int64_t i = i0; i < i1; ++i)
          qs[i] = static_cast<T>(std::clamp(std::nearbyint(xs[i] / s) + z, lo, hi));
      });
    });
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
  // The element loop, typed pointers fetched once; element ranges over the
  // threads (each value computed alone). One value per channel (a weight
  // per column): whole rows of channels, vectorised along the row.
  template <class T>
  static void dequantize(const T* x, const float* scale, const Tensor* zp, const AxisView& v,
                         float* y) {
    if (v.outer * v.C * v.inner == 0) return;
    const std::vector<int64_t> zs = zeroPoints(zp, v.C);
    const int64_t* z = zs.data();
    if (v.inner == 1) {
      ops::detail::parallelRange(
          v.outer, std::max<int64_t>(1, kGrain / v.C), [&](int64_t b, int64_t e) {
            for (int64_t o = b; o < e; ++o) {
              const T* xr = x + o * v.C;
              float* yr = y + o * v.C;
              for (int64_t c = 0; c < v.C; ++c)
                yr[c] = static_cast<float>(static_cast<int64_t>(xr[c]) - z[c]) * scale[c];
            }
          });
      return;
    }
    ops::detail::parallelRange(v.outer * v.C * v.inner, kGrain, [&](int64_t b, int64_t e) {
      forBlocks(v, b, e, [&](int64_t c, int64_t i0, int64_t i1) {
        const float s = scale[c];
        const int64_t zc = z[c];
        for (int64_t i = i0; i < i1; ++i)
          y[i] = static_cast<float>(static_cast<int64_t>(x[i]) - zc) * s;
      });
    });
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
