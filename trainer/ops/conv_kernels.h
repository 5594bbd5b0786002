// Internal kernels shared by the Conv, Gemm/MatMul and pooling ops: a strided
// row-major GEMM on Eigen, window geometry (pads, auto_pad, ceil_mode),
// im2col/col2im and the direct depthwise convolution (forward and backward).
// Not a public API: everything lives in slim::ops::detail.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/ops/attrs.h"

namespace slim::ops::detail {

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices.
/// @param ta,tb  transpose A ([K,M] stored) / B ([N,K] stored)
/// @param m,n,k  op(A) is [m,k], op(B) is [k,n], C is [m,n]
/// @param lda,ldb,ldc  row strides (elements) of the stored matrices
/// @param beta   0 overwrites C (its old contents are ignored, NaNs included)
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc);

/// Geometry of one spatial axis of a sliding window (conv or pool).
struct Axis {
  int64_t in = 0;      ///< input size
  int64_t kernel = 1;  ///< kernel size (undilated)
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
  int64_t out = 0;     ///< output size
  /// Effective (dilated) kernel extent.
  int64_t extent() const { return (kernel - 1) * dilation + 1; }
};

/// Window attributes as ONNX names them, validated for 2-D windows.
struct WindowAttrs {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel;     ///< may be empty for Conv (taken from W)
  std::vector<int64_t> strides;    ///< {sH, sW}
  std::vector<int64_t> dilations;  ///< {dH, dW}
  std::vector<int64_t> pads;       ///< {top, left, bottom, right}
  bool ceil_mode = false;
};

/// Reads auto_pad/kernel_shape/strides/dilations/pads/ceil_mode from `a`;
/// throws ModelError for anything but 2-D windows or an unknown auto_pad.
WindowAttrs readWindowAttrs(const Attrs& a, bool need_kernel);

/// Resolves the two spatial axes for an input of spatial size (h, w) and a
/// kernel (kh, kw): applies auto_pad, explicit pads and ceil_mode, computes
/// the output sizes. Throws ShapeError (prefixed by `label`) when the output
/// would be empty.
void resolveAxes(const WindowAttrs& wa, int64_t h, int64_t w, int64_t kh,
                 int64_t kw, const std::string& label, Axis& ah, Axis& aw);

/// Valid output range [lo, hi) of an axis for kernel tap `t`: the outputs o
/// with 0 <= o*stride - pad_begin + t*dilation < in.
void tapRange(const Axis& a, int64_t t, int64_t& lo, int64_t& hi);

/// im2col for one image and a block of `c` channels.
/// x: (c, H, W) -> col: (c*kH*kW, OH*OW), zeros where the window hits padding.
void im2col(const float* x, int64_t c, const Axis& ah, const Axis& aw, float* col);

/// col2im (the adjoint of im2col): dx (c, H, W) += col (c*kH*kW, OH*OW).
void col2im(const float* col, int64_t c, const Axis& ah, const Axis& aw, float* dx);

/// Direct depthwise convolution of one image (group == C, M = C * mult),
/// without im2col (polyphase planes, see conv_kernels.cc).
/// x: (C, H, W), w: (M, kH, kW), bias: (M) or null -> y: (M, OH, OW).
/// @param scratch  grown as needed and reused across calls
void depthwiseForward(const float* x, const float* w, const float* bias,
                      int64_t c, int64_t mult, const Axis& ah, const Axis& aw,
                      float* y, std::vector<float>& scratch);

/// Depthwise backward for one image. dx (C,H,W) += ..., dw (M,kH,kW) += ...;
/// either may be null to skip it. `scratch` as for depthwiseForward.
void depthwiseBackward(const float* x, const float* w, const float* dy,
                       int64_t c, int64_t mult, const Axis& ah, const Axis& aw,
                       float* dx, float* dw, std::vector<float>& scratch);

}  // namespace slim::ops::detail
