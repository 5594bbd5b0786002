// ConvTranspose (ONNX, 2-D): strides, pads, output_padding, output_shape,
// dilations, auto_pad and group, expressed through the Conv kernels: it is
// the adjoint of the Conv that maps Y (N, M, OH, OW) to X (N, C, H, W) with
// the same W (C, M/g, kH, kW). So forward = that Conv's backward-data
// (W_g^T x GEMM, then col2im), dX = that Conv's forward (im2col(dY), W_g
// GEMM) and dW = x * im2col(dY)^T, summed per fixed chunk of images and the
// chunk partials added in fixed point (exact_sum.h); dB per (image, channel)
// sums in fixed point. Both are rank-exact as Conv's are.
#include <algorithm>
#include <string>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

using detail::Axis;

// a / 2 rounded toward minus infinity (ONNX's pad split, as Python computes it).
int64_t floorHalf(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

class ConvTransposeOp : public Op {
 public:
  explicit ConvTransposeOp(const Attrs& a)
      : group_(a.getInt("group", 1)),
        auto_pad_(a.getString("auto_pad", "NOTSET")),
        kernel_(a.getInts("kernel_shape", {})),
        strides_(a.getInts("strides", {1, 1})),
        dilations_(a.getInts("dilations", {1, 1})),
        pads_(a.getInts("pads", {0, 0, 0, 0})),
        out_pad_(a.getInts("output_padding", {0, 0})),
        out_shape_(a.getInts("output_shape", {})) {
    if (group_ < 1) SLIM_THROW(ModelError, "group must be >= 1, got ", group_);
    if (auto_pad_ != "NOTSET" && auto_pad_ != "VALID" && auto_pad_ != "SAME_UPPER" &&
        auto_pad_ != "SAME_LOWER")
      SLIM_THROW(ModelError, "unknown auto_pad '", auto_pad_, "'");
    if ((!kernel_.empty() && kernel_.size() != 2) || strides_.size() != 2 ||
        dilations_.size() != 2 || pads_.size() != 4 || out_pad_.size() != 2 ||
        (!out_shape_.empty() && out_shape_.size() != 2 && out_shape_.size() != 4))
      SLIM_THROW(ModelError, "ConvTranspose with other than 2 spatial axes is not supported "
                 "(2-D only)");
    for (int i = 0; i < 2; ++i) {
      if (strides_[i] < 1 || dilations_[i] < 1)
        SLIM_THROW(ModelError, "strides and dilations must be >= 1");
      if (out_pad_[i] < 0) SLIM_THROW(ModelError, "output_padding must be >= 0");
    }
    for (int64_t p : pads_)
      if (p < 0) SLIM_THROW(ModelError, "negative pads are not supported, got ", p);
  }

  bool reducesGradOverRanks(int i) const override { return i == 1 || i == 2; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const float* xp = in[0]->f32();
    const float* wp = in[1]->f32();
    const float* bias = in.size() > 2 && in[2] ? in[2]->f32() : nullptr;
    Tensor& y = *out[0];
    // x: (N, C, H, W)  w: (C, M/g, kH, kW)  y: (N, M, OH, OW)
    y.resize({N_, M_, ah_.in, aw_.in});
    float* yp = y.f32();
    const int64_t P = ah_.out * aw_.out, Q = ah_.in * aw_.in;
    packWeights(wp, true);
    detail::parallelFor(N_, [&](int64_t n) {
      float* col = colBuffer(static_cast<size_t>(Kg_ * group_ * P));
      const float* xn = xp + n * C_ * P;
      for (int64_t g = 0; g < group_; ++g) {
        // col_g (Kg, P) = w_g^T (Kg, Cg) * x_g (Cg, P)
        detail::gemmPacked(Kg_, P, Cg_, 1.f, wpack_.data() + g * packed_group_,
                           xn + g * Cg_ * P, P, 0.f, col + g * Kg_ * P, P);
      }
      float* yn = yp + n * M_ * Q;
      std::fill(yn, yn + M_ * Q, 0.f);
      detail::col2im(col, M_, ah_, aw_, yn);
      if (bias)
        for (int64_t m = 0; m < M_; ++m)
          for (int64_t q = 0; q < Q; ++q) yn[m * Q + q] += bias[m];
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* dw = din.size() > 1 ? din[1] : nullptr;
    Tensor* db = din.size() > 2 && in.size() > 2 && in[2] ? din[2] : nullptr;
    if (dx) dx->resize(in[0]->shape());
    if (dw) dw->resize(in[1]->shape());
    if (db) db->resize({M_});
    if (!dout[0]) {
      for (Tensor* t : {dx, dw, db})
        if (t) t->zero();
      return;
    }
    const float* dy = dout[0]->f32();
    const int64_t P = ah_.out * aw_.out, Q = ah_.in * aw_.in, N = N_, M = M_;
    if (db) {  // per (image, channel) sums in fixed point: exact, any split
      rank_reduction::FixedSum sum;
      sum.setShift(gradShift(2, ctx));
      rank_reduction::sumOverBatch<1>(N, M, sum, [&](int64_t n, int64_t m, float* v) {
        v[0] = detail::sumF(dy + (n * M + m) * Q, Q);
      });
      finishSum(2, sum, ctx, db->f32());
    }
    if (!dx && !dw) return;
    const float* xp = in[0]->f32();
    const float* wp = in[1]->f32();
    float* dxp = dx ? dx->f32() : nullptr;
    if (dxp) packWeights(wp, false);
    // Fixed chunks of kSumChunk images: dx per image, dw as one float
    // partial per chunk (images in order), partials added in fixed point.
    const rank_reduction::SumChunks chunks(N);
    const int64_t wsize = in[1]->numel();
    if (dw) partial_.resize(static_cast<size_t>(chunks.count * wsize));
    detail::parallelFor(chunks.count, [&](int64_t c) {
      float* dwc = dw ? partial_.data() + c * wsize : nullptr;
      for (int64_t n = chunks.begin(c); n < chunks.end(c); ++n) {
        float* col = colBuffer(static_cast<size_t>(Kg_ * group_ * P));
        detail::im2col(dy + n * M * Q, M, ah_, aw_, col);
        const float* xn = xp + n * C_ * P;
        for (int64_t g = 0; g < group_; ++g) {
          const float* colg = col + g * Kg_ * P;
          if (dxp)  // dx_g (Cg, P) = w_g (Cg, Kg) * col_g (Kg, P)
            detail::gemmPacked(Cg_, P, Kg_, 1.f, wpack_.data() + g * packed_group_, colg, P,
                               0.f, dxp + n * C_ * P + g * Cg_ * P, P);
          if (dwc)  // dw_g (Cg, Kg) += x_g (Cg, P) * col_g^T (P, Kg)
            detail::gemm(false, true, Cg_, Kg_, P, 1.f, xn + g * Cg_ * P, P, colg, P,
                         n == chunks.begin(c) ? 0.f : 1.f, dwc + g * Cg_ * Kg_, Kg_);
        }
      }
    });
    if (dw) finishPartials(1, partial_.data(), chunks.count, wsize, wsum_, ctx, dw->f32());
  }

 private:
  // Validates shapes; ah_/aw_ describe the adjoint Conv: its input is y
  // (in = OH), its output x (out = H).
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs X and W");
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    requireF32(x, label);
    requireF32(w, label, "W");
    if (x.ndim() != 4 || w.ndim() != 4)
      SLIM_THROW(ModelError, label, ": ConvTranspose of X ", shapeStr(x.shape()), ", W ",
                 shapeStr(w.shape()), " is not supported (2-D only)");
    N_ = x.dim(0);
    C_ = x.dim(1);
    if (w.dim(0) != C_ || C_ % group_ != 0)
      SLIM_THROW(ShapeError, label, ": X ", shapeStr(x.shape()), " and W ", shapeStr(w.shape()),
                 " do not fit group=", group_, " (need W.dim(0) == C, C % group == 0)");
    Cg_ = C_ / group_;
    M_ = w.dim(1) * group_;
    Kg_ = w.dim(1) * w.dim(2) * w.dim(3);
    if (!kernel_.empty() && (kernel_[0] != w.dim(2) || kernel_[1] != w.dim(3)))
      SLIM_THROW(ShapeError, label, ": kernel_shape does not match W ", shapeStr(w.shape()));
    if (in.size() > 2 && in[2]) {
      requireF32(*in[2], label, "B");
      SLIM_ENFORCE_EQ(in[2]->numel(), M_, label, ": bias size vs output channels");
    }
    resolve(0, x.dim(2), w.dim(2), ah_);
    resolve(1, x.dim(3), w.dim(3), aw_);
  }

  void resolve(int i, int64_t in, int64_t k, Axis& a) const {
    a.out = in;
    a.kernel = k;
    a.stride = strides_[i];
    a.dilation = dilations_[i];
    const int64_t natural = a.stride * (in - 1) + out_pad_[i] + a.extent();
    int64_t out, pb, pe;
    const bool same = auto_pad_ == "SAME_UPPER" || auto_pad_ == "SAME_LOWER";
    if (!out_shape_.empty() || same) {
      out = !out_shape_.empty() ? out_shape_[out_shape_.size() - 2 + i] : in * a.stride;
      const int64_t total = natural - out;
      if (auto_pad_ == "SAME_UPPER") {
        pb = floorHalf(total);
        pe = total - pb;
      } else {
        pe = floorHalf(total);
        pb = total - pe;
      }
    } else {
      pb = auto_pad_ == "VALID" ? 0 : pads_[i];
      pe = auto_pad_ == "VALID" ? 0 : pads_[i + 2];
      out = natural - pb - pe;
    }
    if (pb < 0)
      SLIM_THROW(ModelError, label, ": an output_shape that pads the start of the output is "
                 "not supported");
    if (out < 1) SLIM_THROW(ShapeError, label, ": empty output on spatial axis ", i);
    a.in = out;
    a.pad_begin = pb;
    a.pad_end = pe;
  }

  // W packed for gemmPacked, per group: w_g^T (Kg, Cg) for the forward,
  // w_g (Cg, Kg) for dx.
  void packWeights(const float* w, bool transposed) {
    const int64_t m = transposed ? Kg_ : Cg_, k = transposed ? Cg_ : Kg_;
    packed_group_ = detail::packedASize(m, k);
    wpack_.resize(static_cast<size_t>(group_ * packed_group_));
    for (int64_t g = 0; g < group_; ++g)
      detail::packA(transposed, m, k, w + g * Cg_ * Kg_, Kg_, wpack_.data() + g * packed_group_);
  }

  // The calling thread's column buffer, grown only.
  static float* colBuffer(size_t n) {
    thread_local std::vector<float> buf;
    if (buf.size() < n) buf.resize(n);
    return buf.data();
  }

  int64_t group_;
  std::string auto_pad_;
  std::vector<int64_t> kernel_, strides_, dilations_, pads_, out_pad_, out_shape_;
  int64_t N_ = 0, C_ = 0, M_ = 0, Cg_ = 0, Kg_ = 0;
  Axis ah_, aw_;
  std::vector<float> wpack_;
  int64_t packed_group_ = 0;
  std::vector<float> partial_;  // per-chunk weight-gradient partials
  rank_reduction::FixedSum wsum_;
};

}  // namespace

void registerConvTransposeOps(OpRegistry& r) {
  r.add("ConvTranspose", [](const Attrs& a) { return std::make_unique<ConvTransposeOp>(a); });
}

}  // namespace slim::ops
