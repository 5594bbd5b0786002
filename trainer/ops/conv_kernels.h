// Internal kernels shared by the Conv, Gemm/MatMul and pooling ops: a strided
// row-major GEMM (gemm_kernels.cc), window geometry (pads, auto_pad, ceil_mode),
// im2col/col2im (conv_kernels.cc) and the direct depthwise convolution
// (depthwise.cc).
// Not a public API: everything lives in slim::ops::detail.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/ops/attrs.h"

namespace slim::ops::detail {

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices: packA +
/// gemmPacked (B^T transposed first when tb), the same bits for any thread
/// count.
/// @param ta,tb  transpose A ([K,M] stored) / B ([N,K] stored)
/// @param m,n,k  op(A) is [m,k], op(B) is [k,n], C is [m,n]
/// @param lda,ldb,ldc  row strides (elements) of the stored matrices
/// @param beta   0 overwrites C (its old contents are ignored, NaNs included)
/// @param cin,ldcin  where beta's C is read, when not from c itself: row
///               stride ldcin, 0 repeating one row (a bias added to every
///               row: with beta 1, the bits of the product and then an Add)
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          const float* cin = nullptr, int64_t ldcin = 0);

/// Rows of a packed A panel (packA, gemmPacked).
constexpr int64_t kGemmMR = 8;

/// Floats packA writes for an m x k matrix.
int64_t packedASize(int64_t m, int64_t k);

/// Packs op(A) (m x k; stored [k, m] when ta) into panels of kGemmMR rows,
/// k-major within a panel, the rows past m zero.
void packA(bool ta, int64_t m, int64_t k, const float* a, int64_t lda, float* dst);

/// C (m x n) = alpha * A * B + beta * C with A packed by packA and B row-major
/// [k, n] (row stride ldb), read in place. Each element accumulates over k in
/// ascending order from zero (fused multiply-adds), then c = fma(acc, alpha,
/// beta * c) (beta == 0: c is not read; cin: C's old values read there, as
/// gemm): the same bits for any thread count and instruction set
/// (gemm_kernels.cc). Splits over the threads when not called from a parallel
/// region and the product is large.
void gemmPacked(int64_t m, int64_t n, int64_t k, float alpha, const float* ap, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* cin = nullptr,
                int64_t ldcin = 0);

/// Packed B (gemmPackedB): tiles of the kernels' column count (48 with
/// AVX-512, 16 otherwise), each stored as its k rows of its width (the last
/// tile may be narrower), tile after tile, k * n floats in all. The kernels
/// then read B contiguously (a row-major B far wider than a tile costs a page
/// per row of k: the weight gradient's B has k = 8 images x their positions).
///
/// Writes rows [r0, r0 + rows) of the k x n packed B from their transpose:
/// B[r0 + p][j] = src[j * lds + p] (src: n rows of at least `rows` floats).
void packBTransposed(int64_t k, int64_t n, int64_t r0, int64_t rows, const float* src, int64_t lds,
                     float* dst);

/// gemmPacked with B packed by packBTransposed: the same
/// bits as gemmPacked on the unpacked B.
void gemmPackedB(int64_t m, int64_t n, int64_t k, float alpha, const float* ap, const float* bp,
                 float beta, float* c, int64_t ldc, const float* cin = nullptr, int64_t ldcin = 0);

/// packA for the m x (count * len) matrix whose columns [s * len, (s + 1) *
/// len) are segment s: rows lda apart starting at a0 + s * a_step (the
/// per-image blocks of a chunk, side by side, without copying them first).
void packASegments(int64_t m, int64_t count, int64_t len, const float* a0, int64_t a_step,
                   int64_t lda, float* dst);

/// C (m x n, row stride ldc) = sum over segments s < count of A_s B_s^T, where
/// row i of A_s is the len floats at a + s * a_step + i * lda and row j of B_s
/// those at b + s * b_step + j * ldb: every element the dot product of two
/// rows read in place (a weight gradient: dy rows against input rows, over
/// the positions of every image). Each element sums 16 lanes (lane q takes
/// the positions p = q mod 16 of each segment in order, fused multiply-adds
/// from zero) folded by fold16 (parallel.h): the same bits for any thread
/// count and instruction set (row_dots.cc). Splits over the threads when
/// not called from a parallel region and the product is large.
void gemmRowDots(int64_t m, int64_t n, int64_t count, int64_t len, const float* a, int64_t a_step,
                 int64_t lda, const float* b, int64_t b_step, int64_t ldb, float* c, int64_t ldc);

/// Whether gemmRowDots beats packing for gemmPackedB on an m x n product
/// over segments of len positions (small m or n, long segments).
bool rowDotsPay(int64_t m, int64_t n, int64_t len);

/// dst (cols x rows, row stride ldd) = src^T (src: rows x cols, stride lds).
void transposeTo(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                 int64_t ldd);

/// Geometry of one spatial axis of a sliding window (conv or pool).
struct Axis {
  int64_t in = 0;      ///< input size
  int64_t kernel = 1;  ///< kernel size (undilated)
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
  int64_t out = 0;     ///< output size
  bool operator==(const Axis&) const = default;
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

/// dst[j] = src[j * stride] for j < n (a copy: the same values whatever the
/// path; stride 2 deinterleaves 32 floats at a time on AVX-512). Reads only
/// src[0 .. (n - 1) * stride].
void copyStrided(float* dst, const float* src, int64_t n, int64_t stride);

/// im2col for one image and a block of `c` channels.
/// x: (c, H, W) -> col: (c*kH*kW, OH*OW), zeros where the window hits padding.
void im2col(const float* x, int64_t c, const Axis& ah, const Axis& aw, float* col);

/// The columns of output rows [oh0, oh1) of im2col: col (c*kH*kW,
/// (oh1 - oh0) * OW), the block of a convolution's B that the GEMM reads
/// next, written while the cache can still hold it.
void im2colRows(const float* x, int64_t c, const Axis& ah, const Axis& aw, int64_t oh0, int64_t oh1,
                float* col);

/// col2im (the adjoint of im2col): dx (c, H, W) += col (c*kH*kW, OH*OW).
void col2im(const float* col, int64_t c, const Axis& ah, const Axis& aw, float* dx);

/// Index tables of the direct depthwise convolution (depthwise.cc) for one
/// geometry, built once and reused for every image. The zero-padded input
/// plane is split into sh*sw phase planes of `plane` floats; tap t reads them
/// at taps[t] + q for wide output position q = oh * Wh + ow.
struct DepthwisePlan {
  DepthwisePlan(const Axis& ah, const Axis& aw);
  bool matches(const Axis& h, const Axis& w) const { return h == ah && w == aw; }
  int64_t total() const { return sh * sw * plane; }  ///< floats of all phase planes
  int64_t wide() const { return ah.out * Wh; }       ///< wide output positions Q

  Axis ah, aw;
  int64_t sh, sw, Hh, Wh, plane;
  std::vector<int64_t> taps;      ///< plane offset per tap kh * kW + kw
  std::vector<int64_t> in_pos;    ///< plane position of every input cell (H*W)
  std::vector<int32_t> in_phase;  ///< its phase plane (in_pos / plane)
  std::vector<int64_t> border;    ///< plane positions no input cell maps to
  std::vector<int64_t> out_pos;   ///< wide position of every output (OH*OW)
  std::vector<int64_t> scratch_q; ///< wide positions that are not outputs
  /// Taps by phase plane, ascending: plane k has taps phase_tap[j] at
  /// in-plane offsets phase_off[j] for j in [phase_begin[k], phase_begin[k+1]).
  std::vector<int64_t> phase_begin, phase_tap, phase_off;
  /// Zero margins of the wide dy below / above its Q positions that the dx
  /// gather (dx cell p of a plane reads dy at p - phase_off) reaches.
  int64_t dy_lo = 0, dy_hi = 0;
  /// In-plane range [phase_lo[k], phase_hi[k]) of phase k's input cells.
  std::vector<int64_t> phase_lo, phase_hi;
  /// The input cells as row moves: input row ih, column phase b: n cells
  /// x[x + sw * i] <-> planes[pos + i] (the per-channel kernels' copies).
  struct RowMove {
    int64_t x, pos, n;
  };
  std::vector<RowMove> in_moves;
};

/// The depthwise kernels (depthwise.cc), all with the same bits: per channel
/// (any shape), channel vectors (mult == 1 and C % 8 == 0; elsewhere the
/// per-channel one runs), or the faster of the two for the shape.
enum class DepthwiseKernel { kAuto, kPerChannel, kChannelVectors };

/// Direct depthwise convolution of one image (group == C, M = C * mult).
/// x: (C, H, W), w: (M, kH, kW), bias: (M) or null -> y: (M, OH, OW).
/// @param scratch  grown as needed and reused across calls
/// @param kernel  which kernel (tests compare them)
void depthwiseForward(const DepthwisePlan& plan, const float* x, const float* w,
                      const float* bias, int64_t c, int64_t mult, float* y,
                      std::vector<float>& scratch, DepthwiseKernel kernel = DepthwiseKernel::kAuto);

/// Depthwise backward for one image: dx (C,H,W) = ... (overwritten), dw
/// (M,kH,kW) += ...; either may be null to skip it. `scratch`, `kernel` as
/// above.
void depthwiseBackward(const DepthwisePlan& plan, const float* x, const float* w,
                       const float* dy, int64_t c, int64_t mult, float* dx, float* dw,
                       std::vector<float>& scratch,
                       DepthwiseKernel kernel = DepthwiseKernel::kAuto);

/// ceil(a / b) for b > 0 and any sign of a.
inline int64_t ceilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

}  // namespace slim::ops::detail
