// Conv (ONNX, 2-D): grouped convolution with any stride, padding and
// dilation. Three paths: 1x1/stride-1/no-pad convs are a GEMM straight on the
// input, depthwise convs (group == C) use a direct kernel, everything else is
// im2col + GEMM per image and group. The im2col buffer is a member that only
// grows, so steady-state steps do not allocate.
#include <algorithm>
#include <cstring>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"

namespace slim::ops {
namespace {

using detail::Axis;

class ConvOp : public Op {
 public:
  explicit ConvOp(const Attrs& a)
      : wa_(detail::readWindowAttrs(a, false)), group_(a.getInt("group", 1)) {
    if (group_ < 1) SLIM_THROW(ModelError, "group must be >= 1, got ", group_);
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const float* bias = in.size() > 2 && in[2] ? in[2]->f32() : nullptr;
    Tensor& y = *out[0];
    y.resize({N_, M_, ah_.out, aw_.out});
    // x: (N, C, H, W)  w: (M, C/g, kH, kW)  y: (N, M, OH, OW)
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in;
    for (int64_t n = 0; n < N_; ++n) {
      const float* xn = x.f32() + n * C_ * HW;
      float* yn = y.f32() + n * M_ * P;
      if (depthwise_) {
        detail::depthwiseForward(xn, w.f32(), bias, C_, M_ / C_, ah_, aw_, yn, col_);
        continue;
      }
      const float* col = xn;
      if (!pointwise_) {
        detail::im2col(xn, C_, ah_, aw_, colBuffer());
        col = col_.data();
      }
      for (int64_t g = 0; g < group_; ++g) {
        // y_g (Mg, P) = w_g (Mg, Kg) * col_g (Kg, P)
        detail::gemm(false, false, Mg_, P, Kg_, 1.f, w.f32() + g * Mg_ * Kg_, Kg_,
                     col + g * Kg_ * P, P, 0.f, yn + g * Mg_ * P, P);
      }
      if (bias) {
        for (int64_t m = 0; m < M_; ++m) {
          float* row = yn + m * P;
          const float b = bias[m];
          for (int64_t p = 0; p < P; ++p) row[p] += b;
        }
      }
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    setup(in);
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* dw = din.size() > 1 ? din[1] : nullptr;
    Tensor* db = din.size() > 2 && in.size() > 2 && in[2] ? din[2] : nullptr;
    if (dx) dx->resize(x.shape());
    if (dw) { dw->resize(w.shape()); dw->zero(); }
    if (db) db->resize({M_});
    if (!dout[0]) {  // no gradient reaches the output: all input grads are zero
      if (dx) dx->zero();
      if (db) db->zero();
      return;
    }
    const float* dy = dout[0]->f32();
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in;
    if (db) {
      float* dbp = db->f32();
      std::fill(dbp, dbp + M_, 0.f);
      for (int64_t n = 0; n < N_; ++n)
        for (int64_t m = 0; m < M_; ++m) {
          const float* row = dy + (n * M_ + m) * P;
          float s = 0.f;
          for (int64_t p = 0; p < P; ++p) s += row[p];
          dbp[m] += s;
        }
    }
    if (!dx && !dw) return;
    if (dx) dx->zero();
    for (int64_t n = 0; n < N_; ++n) {
      const float* xn = x.f32() + n * C_ * HW;
      const float* dyn = dy + n * M_ * P;
      float* dxn = dx ? dx->f32() + n * C_ * HW : nullptr;
      if (depthwise_) {
        detail::depthwiseBackward(xn, w.f32(), dyn, C_, M_ / C_, ah_, aw_, dxn,
                                  dw ? dw->f32() : nullptr, col_);
        continue;
      }
      if (dw) {
        const float* col = xn;
        if (!pointwise_) {
          detail::im2col(xn, C_, ah_, aw_, colBuffer());
          col = col_.data();
        }
        for (int64_t g = 0; g < group_; ++g) {
          // dw_g (Mg, Kg) += dy_g (Mg, P) * col_g^T (P, Kg)
          detail::gemm(false, true, Mg_, Kg_, P, 1.f, dyn + g * Mg_ * P, P,
                       col + g * Kg_ * P, P, 1.f, dw->f32() + g * Mg_ * Kg_, Kg_);
        }
      }
      if (dxn) {
        float* dcol = pointwise_ ? dxn : colBuffer();
        for (int64_t g = 0; g < group_; ++g) {
          // dcol_g (Kg, P) = w_g^T (Kg, Mg) * dy_g (Mg, P)
          detail::gemm(true, false, Kg_, P, Mg_, 1.f, w.f32() + g * Mg_ * Kg_, Kg_,
                       dyn + g * Mg_ * P, P, 0.f, dcol + g * Kg_ * P, P);
        }
        if (!pointwise_) detail::col2im(dcol, C_, ah_, aw_, dxn);
      }
    }
  }

 private:
  // Validates shapes and caches the geometry for the current inputs.
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs X and W");
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    if (x.ndim() != 4 || w.ndim() != 4)
      SLIM_THROW(ModelError, label, ": only 2-D convolution (4-D X and W) is supported; X is ",
                 shapeStr(x.shape()), ", W is ", shapeStr(w.shape()));
    N_ = x.dim(0);
    C_ = x.dim(1);
    M_ = w.dim(0);
    const int64_t kh = w.dim(2), kw = w.dim(3);
    if (C_ % group_ != 0 || M_ % group_ != 0 || w.dim(1) * group_ != C_)
      SLIM_THROW(ShapeError, label, ": X ", shapeStr(x.shape()), " and W ", shapeStr(w.shape()),
                 " do not fit group=", group_, " (need C % group == 0, M % group == 0, "
                 "W.dim(1) == C/group)");
    if (!wa_.kernel.empty() && (wa_.kernel[0] != kh || wa_.kernel[1] != kw))
      SLIM_THROW(ShapeError, label, ": kernel_shape [", wa_.kernel[0], ",", wa_.kernel[1],
                 "] does not match W ", shapeStr(w.shape()));
    if (in.size() > 2 && in[2])
      SLIM_ENFORCE_EQ(in[2]->numel(), M_, label, ": bias size vs output channels");
    detail::resolveAxes(wa_, x.dim(2), x.dim(3), kh, kw, label, ah_, aw_);
    Mg_ = M_ / group_;
    Kg_ = (C_ / group_) * kh * kw;
    depthwise_ = group_ == C_ && group_ > 1;
    pointwise_ = kh == 1 && kw == 1 && ah_.stride == 1 && aw_.stride == 1 &&
                 ah_.pad_begin == 0 && ah_.pad_end == 0 && aw_.pad_begin == 0 &&
                 aw_.pad_end == 0;
  }

  // The im2col buffer (C*kH*kW, OH*OW) for the current geometry.
  float* colBuffer() {
    const size_t need = static_cast<size_t>(Kg_ * group_ * ah_.out * aw_.out);
    if (col_.size() < need) col_.resize(need);
    return col_.data();
  }

  detail::WindowAttrs wa_;
  int64_t group_;
  int64_t N_ = 0, C_ = 0, M_ = 0, Mg_ = 0, Kg_ = 0;
  Axis ah_, aw_;
  bool depthwise_ = false, pointwise_ = false;
  std::vector<float> col_;  // im2col / dcol / depthwise scratch, grows only
};

}  // namespace

void registerConvOps(OpRegistry& r) {
  r.add("Conv", [](const Attrs& a) { return std::make_unique<ConvOp>(a); });
}

}  // namespace slim::ops
