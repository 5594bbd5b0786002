// Conv (ONNX, 2-D): grouped convolution with any stride, padding and
// dilation. Three paths: 1x1/stride-1/no-pad convs are a GEMM straight on the
// input, depthwise convs (group == C) use a direct kernel, everything else is
// im2col + GEMM per image and group, in blocks of output rows whose im2col
// the GEMM reads from the cache. Scratch buffers (per thread) only grow, so
// steady-state steps do not allocate. Threads: images in parallel; the
// weight gradient is one product per fixed chunk of images (exact_sum.h),
// row dots or a GEMM over its inputs packed in the GEMM's column tiles, the
// chunks added in fixed point: results depend on neither the thread count
// nor the rank split.
#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"
#include "trainer/ops/winograd.h"

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
               RunContext& ctx) override {
    setup(in);
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const float* bias = in.size() > 2 && in[2] ? in[2]->f32() : nullptr;
    Tensor& y = *out[0];
    y.resize({N_, M_, ah_.out, aw_.out});
    // x: (N, C, H, W)  w: (M, C/g, kH, kW)  y: (N, M, OH, OW); images in parallel.
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in;
    const float* xp = x.f32();
    const float* wp = w.f32();
    float* yp = y.f32();
    scratch_ = &callerScratch();
    scratch_->ensureThreads();
    const bool wino = ctx.fast_conv && winograd_;
    if (!depthwise_ && !wino) packWeights(wp, false);
    // The reader's row sums (a training BatchNormalization), each while the
    // image's output is in cache: the same sumF it would run.
    float* sums = nullptr;
    if (row_sums_) {
      row_sums_->valid = ctx.training;
      if (ctx.training) {
        row_sums_->sums.resize(static_cast<size_t>(N_ * M_));
        sums = row_sums_->sums.data();
      }
    }
    auto rowSums = [&](int64_t n, const float* yn) {
      if (sums)
        for (int64_t m = 0; m < M_; ++m) sums[n * M_ + m] = detail::sumF(yn + m * P, P);
    };
    // The output epilogue: bias, a fused frozen batch norm (y = fma(y, a, b)
    // per channel), the fused activation; each row while it is in cache.
    const float* na = nullptr;
    const float* nb = nullptr;
    if (norm_) {
      frozenNormCoeffs(*norm_);
      na = norm_ab_.data();
      nb = na + M_;
    }
    const ActEpilogue& act_e = norm_ ? norm_->act : epilogue_;
    // The reader's per-row work (visitOutputRows: PACT's abs-max and codes)
    // on each row as the epilogue leaves it, in cache: the reader's pass
    // over y (38 MB for mobilenet_v2's features.2 expand, batch 8) is saved.
    // Training forwards only: the PACT reads nothing at inference (an
    // evaluation forward would do the work for nothing).
    if (visit_) visit_->valid = false;
    RowVisitLink* visit = ctx.training ? visit_ : nullptr;
    if (visit) visit->begin();
    // Columns [p0, p1) of every output row of image yn: element-wise, so a
    // block of columns at a time (while the GEMM's output is in cache) gives
    // the bits of whole rows.
    auto epilogue = [&](float* yn, const float* b, int64_t p0, int64_t p1) {
      const int64_t L = p1 - p0;
      if (!b && !na && act_e.kind == ActEpilogue::Kind::kNone) {
        if (visit)
          for (int64_t m = 0; m < M_; ++m) visit->visit(yn + m * P + p0, L);
        return;
      }
      act_e.visit([&](auto act) {
        for (int64_t m = 0; m < M_; ++m) {
          float* __restrict row = yn + m * P + p0;
          const float bm = b ? b[m] : 0.f;
          if (na) {
            const float a = na[m], c = nb[m];
            if (b)
              for (int64_t p = 0; p < L; ++p) row[p] = act(std::fma(row[p] + bm, a, c));
            else
              for (int64_t p = 0; p < L; ++p) row[p] = act(std::fma(row[p], a, c));
          } else if (b) {
            for (int64_t p = 0; p < L; ++p) row[p] = act(row[p] + bm);
          } else {
            for (int64_t p = 0; p < L; ++p) row[p] = act(row[p]);
          }
          if (visit) visit->visit(row, L);
        }
      });
    };
    if (wino) {  // the whole batch, then the epilogue per image
      detail::winogradConv(xp, detail::winogradPackedWeights(wp, M_, C_, false),
                           winogradShape(false), yp);
      detail::parallelFor(N_, [&](int64_t n) {
        float* yn = yp + n * M_ * P;
        epilogue(yn, bias, 0, P);
        rowSums(n, yn);
      });
      if (visit) visit->valid = true;
      return;
    }
    detail::parallelFor(N_, [&](int64_t n) {
      const float* xn = xp + n * C_ * HW;
      float* yn = yp + n * M_ * P;
      if (depthwise_) {  // the kernel adds the bias
        detail::depthwiseForward(*dw_plan_, xn, wp, bias, C_, M_ / C_, yn, scratch_->getVec(0));
        epilogue(yn, nullptr, 0, P);
        rowSums(n, yn);
        return;
      }
      // y_g (Mg, P) = w_g (Mg, Kg) * col_g (Kg, P), by blocks of output
      // columns: each block of col_g (rows of output) written just before
      // the GEMM reads it, and the epilogue run on each block of y while it
      // is in cache. A pointwise conv's B is the image itself, read in place.
      float* block =
          pointwise_ ? nullptr : scratch_->get(static_cast<size_t>(Kg_ * block_rows_ * aw_.out));
      const int64_t Cg = C_ / group_, OH = ah_.out, OW = aw_.out;
      if (pointwise_) {
        for (int64_t p0 = 0; p0 < P; p0 += block_cols_) {
          const int64_t nb = std::min(P - p0, block_cols_);
          for (int64_t g = 0; g < group_; ++g)
            detail::gemmPacked(Mg_, nb, Kg_, 1.f, wpack_.data() + g * packed_group_,
                               xn + g * Cg * HW + p0, HW, 0.f, yn + g * Mg_ * P + p0, P);
          epilogue(yn, bias, p0, p0 + nb);
        }
      } else {
        for (int64_t oh0 = 0; oh0 < OH; oh0 += block_rows_) {
          const int64_t oh1 = std::min(OH, oh0 + block_rows_), nb = (oh1 - oh0) * OW;
          for (int64_t g = 0; g < group_; ++g) {
            detail::im2colRows(xn + g * Cg * HW, Cg, ah_, aw_, oh0, oh1, block);
            detail::gemmPacked(Mg_, nb, Kg_, 1.f, wpack_.data() + g * packed_group_, block, nb, 0.f,
                               yn + g * Mg_ * P + oh0 * OW, P);
          }
          epilogue(yn, bias, oh0 * OW, oh1 * OW);
        }
      }
      rowSums(n, yn);
    });
    if (visit) visit->valid = true;
  }

  // Backward reads x, w and dy, never y or the bias.
  bool backwardReadsInput(size_t i, const std::vector<bool>&) const override { return i < 2; }
  bool backwardReadsOutput(size_t) const override { return false; }
  bool fuseOutputActivation(const ActEpilogue& e) override {
    epilogue_ = e;
    return true;
  }
  bool maskInputGradient(const ActEpilogue& e) override {
    dx_mask_ = e;
    return true;
  }
  bool fuseOutputNorm(const FrozenNormLink* link) override {
    norm_ = link;
    return true;
  }
  bool publishOutputRowSums(RowSumsLink* link) override {
    row_sums_ = link;
    return true;
  }
  // Visits in training forwards only (the link stays invalid at inference).
  bool visitOutputRows(RowVisitLink* link) override {
    visit_ = link;
    return true;
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    SLIM_ENFORCE(!norm_, label, ": backward of a conv with a batch norm fused into it");
    setup(in);
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* dw = din.size() > 1 ? din[1] : nullptr;
    Tensor* db = din.size() > 2 && in.size() > 2 && in[2] ? din[2] : nullptr;
    if (dx) dx->resize(x.shape());
    if (dw) dw->resize(w.shape());
    if (db) db->resize({M_});
    if (!dout[0]) {  // no gradient reaches the output: all input grads are zero
      if (dx) dx->zero();
      if (dw) dw->zero();
      if (db) db->zero();
      return;
    }
    const float* dy = dout[0]->f32();
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in;
    const int64_t N = N_, M = M_;
    if (db) {  // per (image, channel) sums in fixed point: exact, any split
      rank_reduction::FixedSum sum;
      sum.setShift(gradShift(2, ctx));
      rank_reduction::sumOverBatch<1>(
          N, M, sum,
          [&](int64_t n, int64_t m, float* v) { v[0] = detail::sumF(dy + (n * M + m) * P, P); }, P);
      finishSum(2, sum, ctx, db->f32());
    }
    if (!dx && !dw) return;
    // Fixed chunks of kSumChunk images: dx per image, dw as one float
    // partial per chunk, the partials summed in fixed point (exact_sum.h):
    // independent of the threads and of how ranks split the batch.
    const rank_reduction::SumChunks chunks(N);
    const int64_t wsize = w.numel();
    if (dw && partial_.size() < static_cast<size_t>(chunks.count * wsize))
      partial_.resize(chunks.count * wsize);
    const float* xp = x.f32();
    const float* wp = w.f32();
    float* dxp = dx ? dx->f32() : nullptr;
    scratch_ = &callerScratch();
    scratch_->ensureThreads();
    const bool wino = ctx.fast_conv && winograd_;
    if (dxp && !depthwise_ && !wino) packWeights(wp, true);  // W^T for every image's dx
    if (depthwise_) {
      // Tasks (chunk, block of channels): channels are independent, so any
      // split gives the same bits. Blocks are multiples of 8 channels (the
      // channel-vector kernel) and keep every thread busy on few chunks.
      const int64_t mult = M_ / C_, KK = ah_.kernel * aw_.kernel;
      const int64_t per_chunk = detail::ceilDiv(detail::opThreads(), chunks.count);
      const int64_t block = std::max<int64_t>(8, detail::ceilDiv(C_, per_chunk * 8) * 8);
      const int64_t blocks = (C_ + block - 1) / block;
      detail::parallelFor(chunks.count * blocks, [&](int64_t t) {
        const int64_t c = t / blocks, c0 = (t % blocks) * block;
        const int64_t cb = std::min(block, C_ - c0);
        float* dwc = dw ? partial_.data() + c * wsize + c0 * mult * KK : nullptr;
        if (dwc) std::fill(dwc, dwc + cb * mult * KK, 0.f);
        for (int64_t n = chunks.begin(c); n < chunks.end(c); ++n) {
          float* dxn = dxp ? dxp + (n * C_ + c0) * HW : nullptr;
          detail::depthwiseBackward(*dw_plan_, xp + (n * C_ + c0) * HW, wp + c0 * mult * KK,
                                    dy + (n * M_ + c0 * mult) * P, cb, mult, dxn, dwc,
                                    scratch_->getVec(0));
          if (dxn) dx_mask_.maskGrad(xp + (n * C_ + c0) * HW, dxn, cb * HW);
        }
      });
    } else if (group_ == 1) {
      // dW per chunk (one GEMM over its images), dX per image: separate
      // loops, so a batch of one chunk still uses every thread for dX.
      if (dw && wino && ah_.out * aw_.out >= detail::kWinogradGradMinPositions) {
        // chunk after chunk, each split over the threads
        for (int64_t c = 0; c < chunks.count; ++c) {
          detail::WinogradShape ws = winogradShape(false);
          ws.n = chunks.end(c) - chunks.begin(c);
          detail::winogradWeightGrad(xp + chunks.begin(c) * C_ * HW, dy + chunks.begin(c) * M_ * P,
                                     ws, partial_.data() + c * wsize);
        }
      } else if (dw) {
        detail::parallelFor(chunks.count, [&](int64_t c) {
          chunkWeightGrad(xp, dy, chunks.begin(c), chunks.end(c),
                          partial_.data() + c * wsize);
        });
      }
      if (dxp && wino) {  // dx = the conv of dy with W^T rotated 180 degrees
        detail::winogradConv(dy, detail::winogradPackedWeights(wp, M_, C_, true),
                             winogradShape(true), dxp);
        detail::parallelFor(
            N, [&](int64_t n) { dx_mask_.maskGrad(xp + n * C_ * HW, dxp + n * C_ * HW, C_ * HW); });
      } else if (dxp)
        detail::parallelFor(N, [&](int64_t n) {
          imageBackward(xp + n * C_ * HW, wp, dy + n * M_ * P, dxp + n * C_ * HW, nullptr,
                        false);
        });
    } else {
      detail::parallelFor(chunks.count, [&](int64_t c) {
        float* dwc = dw ? partial_.data() + c * wsize : nullptr;
        for (int64_t n = chunks.begin(c); n < chunks.end(c); ++n)
          imageBackward(xp + n * C_ * HW, wp, dy + n * M_ * P,
                        dxp ? dxp + n * C_ * HW : nullptr, dwc, n == chunks.begin(c));
      });
    }
    if (dw) {
      finishPartials(1, partial_.data(), chunks.count, wsize, wsum_, ctx, dw->f32());
    }
  }

  bool reducesGradOverRanks(int i) const override { return i == 1 || i == 2; }

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
    if (depthwise_ && !(dw_plan_ && dw_plan_->matches(ah_, aw_))) dw_plan_.emplace(ah_, aw_);
    // Forward blocks: output rows holding about kBlockBytes of B, at least
    // 64 columns (a narrow block spends its time in the GEMM's column tail).
    block_rows_ = std::min(ah_.out, std::max({int64_t{1}, kBlockBytes / (4 * Kg_ * aw_.out),
                                              detail::ceilDiv(64, aw_.out)}));
    // Pointwise blocks: about kBlockBytes of output, 48k columns (GEMM tiles), >= 96.
    block_cols_ = std::max<int64_t>(96, kBlockBytes / (4 * M_) / 48 * 48);
    winograd_ = group_ == 1 && kh == 3 && kw == 3 && ah_.stride == 1 && aw_.stride == 1 &&
                ah_.dilation == 1 && aw_.dilation == 1 && C_ >= detail::kWinogradMinChannels &&
                M_ >= detail::kWinogradMinChannels;
    pointwise_ = kh == 1 && kw == 1 && ah_.stride == 1 && aw_.stride == 1 &&
                 ah_.pad_begin == 0 && ah_.pad_end == 0 && aw_.pad_begin == 0 &&
                 aw_.pad_end == 0;
  }

  // The Winograd conv of the batch: y from x, or (dx) dx from dy, the
  // correlation of dy with the flipped kernel padded by 2 - pad_begin.
  detail::WinogradShape winogradShape(bool dx) const {
    detail::WinogradShape s;
    s.n = N_;
    if (dx) {
      s.c = M_, s.h = ah_.out, s.w = aw_.out;
      s.m = C_, s.oh = ah_.in, s.ow = aw_.in;
      s.top = 2 - ah_.pad_begin, s.left = 2 - aw_.pad_begin;
    } else {
      s.c = C_, s.h = ah_.in, s.w = aw_.in;
      s.m = M_, s.oh = ah_.out, s.ow = aw_.out;
      s.top = ah_.pad_begin, s.left = aw_.pad_begin;
    }
    return s;
  }

  // Floats of one image's im2col buffer (C*kH*kW, OH*OW).
  size_t colSize() const { return static_cast<size_t>(Kg_ * group_ * ah_.out * aw_.out); }

  // One image's columns: the image itself for a pointwise conv, otherwise
  // its im2col in the calling thread's scratch buffer.
  const float* columns(const float* xn) {
    if (pointwise_) return xn;
    float* buf = scratch_->get(colSize());
    detail::im2col(xn, C_, ah_, aw_, buf);
    return buf;
  }

  // group == 1: dw (M, K) = sum over images [n0, n1) of dy_n (M, P) col_n^T:
  // as row dots of dy with x (or the chunk's im2col) where they pay, else as
  // one GEMM over the chunk side by side: A = the dy blocks packed straight
  // from the batch, B (L, K) = the col blocks transposed, packed.
  void chunkWeightGrad(const float* x, const float* dy, int64_t n0, int64_t n1, float* dw) {
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in, K = Kg_, nc = n1 - n0;
    const bool dots = detail::rowDotsPay(M_, K, P);
    if (dots && pointwise_)
      return detail::gemmRowDots(M_, K, nc, P, dy + n0 * M_ * P, M_ * P, P, x + n0 * C_ * HW,
                                 C_ * HW, HW, dw, K);
    const int64_t L = nc * P, apack = dots ? 0 : detail::packedASize(M_, L);
    float* buf = scratch_->get(static_cast<size_t>(apack + L * K));
    float* ap = buf;            // dy of the chunk, packed
    float* bt = buf + apack;    // (L, K) packed, or the chunk's im2col for row dots
    if (!dots) detail::packASegments(M_, nc, P, dy + n0 * M_ * P, M_ * P, P, ap);
    // Each image's columns into its rows of bt: over the threads when this
    // chunk is the only task and large (a copy: any split, the same bytes).
    detail::parallelRange(
        nc, std::max<int64_t>(1, detail::kGrainCheap / (P * K)), [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            const float* col = x + (n0 + i) * C_ * HW;
            if (dots) {
              detail::im2col(col, C_, ah_, aw_, bt + i * K * P);
              continue;
            }
            if (!pointwise_) {  // the image's im2col, in a buffer of the thread's own
              thread_local std::vector<float> tmp;
              if (tmp.size() < colSize()) tmp.resize(colSize());
              detail::im2col(col, C_, ah_, aw_, tmp.data());
              col = tmp.data();
            }
            detail::packBTransposed(L, K, i * P, P, col, P, bt);
          }
        });
    if (dots)
      detail::gemmRowDots(M_, K, nc, P, dy + n0 * M_ * P, M_ * P, P, bt, K * P, P, dw, K);
    else
      detail::gemmPackedB(M_, K, L, 1.f, ap, bt, 0.f, dw, K);
  }

  // norm_ab_ = (a (M), b (M)) of the fused frozen batch norm, as the
  // BatchNormalization op computes them.
  void frozenNormCoeffs(const FrozenNormLink& l) {
    for (const Tensor* t : {l.scale, l.bias, l.mean, l.var})
      SLIM_ENFORCE(t && t->dtype() == DType::kF32 && t->numel() == M_, label,
                   ": fused batch norm parameters must be float32 [", M_, "]");
    norm_ab_.resize(static_cast<size_t>(2 * M_));
    const float *sc = l.scale->f32(), *bi = l.bias->f32(), *me = l.mean->f32(),
                *va = l.var->f32();
    for (int64_t m = 0; m < M_; ++m)
      normCoeffs(sc[m], normInvStd(va[m], l.eps), me[m], bi[m], norm_ab_[m],
                      norm_ab_[M_ + m]);
  }

  // W packed for gemmPacked, per group: w_g (Mg, Kg) for the forward, w_g^T
  // (Kg, Mg) for the input gradient. Once per call, shared by every image.
  void packWeights(const float* w, bool transposed) {
    const int64_t m = transposed ? Kg_ : Mg_, k = transposed ? Mg_ : Kg_;
    packed_group_ = detail::packedASize(m, k);
    wpack_.resize(static_cast<size_t>(group_ * packed_group_));
    for (int64_t g = 0; g < group_; ++g)
      detail::packA(transposed, m, k, w + g * Mg_ * Kg_, Kg_, wpack_.data() + g * packed_group_);
  }

  // dx of one image (not depthwise) and, when dw is given (grouped), its
  // weight gradient (overwritten when `first`, accumulated otherwise).
  void imageBackward(const float* xn, const float* w, const float* dyn, float* dxn, float* dw,
                     bool first) {
    const int64_t P = ah_.out * aw_.out, HW = ah_.in * aw_.in;
    if (dw) {
      const float* col = columns(xn);
      for (int64_t g = 0; g < group_; ++g) {
        // dw_g (Mg, Kg) += dy_g (Mg, P) * col_g^T (P, Kg)
        detail::gemm(false, true, Mg_, Kg_, P, 1.f, dyn + g * Mg_ * P, P, col + g * Kg_ * P,
                     P, first ? 0.f : 1.f, dw + g * Mg_ * Kg_, Kg_);
      }
    }
    if (dxn) {
      float* dcol = pointwise_ ? dxn : scratch_->get(colSize());
      for (int64_t g = 0; g < group_; ++g) {
        // dcol_g (Kg, P) = w_g^T (Kg, Mg) * dy_g (Mg, P)
        detail::gemmPacked(Kg_, P, Mg_, 1.f, wpack_.data() + g * packed_group_,
                           dyn + g * Mg_ * P, P, 0.f, dcol + g * Kg_ * P, P);
      }
      if (!pointwise_) {
        std::fill(dxn, dxn + C_ * HW, 0.f);
        detail::col2im(dcol, C_, ah_, aw_, dxn);
      }
      dx_mask_.maskGrad(xn, dxn, C_ * HW);
    }
  }

  detail::WindowAttrs wa_;
  int64_t group_;
  // Bytes of one forward block of im2col: with the weights' panels it stays
  // in a core's L2 while the GEMM reads it.
  static constexpr int64_t kBlockBytes = 512 << 10;
  int64_t N_ = 0, C_ = 0, M_ = 0, Mg_ = 0, Kg_ = 0, block_rows_ = 0, block_cols_ = 0;
  Axis ah_, aw_;
  bool depthwise_ = false, pointwise_ = false;
  bool winograd_ = false;  // group 1, 3x3, stride 1, dilation 1, enough channels
  std::optional<detail::DepthwisePlan> dw_plan_;  // tables for the current geometry
  ActEpilogue epilogue_;  // fused Relu/Clip on y (executor)
  ActEpilogue dx_mask_;   // fused Relu/Clip backward on dx (executor)
  RowSumsLink* row_sums_ = nullptr;  // y's row sums for the reader (executor)
  RowVisitLink* visit_ = nullptr;    // the reader's per-row work on y (executor)
  const FrozenNormLink* norm_ = nullptr;  // frozen batch norm on y (executor)
  std::vector<float> norm_ab_;            // its coefficients (frozenNormCoeffs)
  // Per-thread im2col / dcol / chunk packing / depthwise scratch. Transient
  // within one forward or backward call, so one set per calling thread serves
  // every Conv node (ops of one executor run one at a time; threads-as-ranks
  // run one executor per thread): memory is the largest node's, not the sum
  // (the dW packing alone is a copy of a chunk's activations). Set at the
  // start of forward / backward.
  static detail::ThreadScratch& callerScratch() {
    thread_local detail::ThreadScratch s;
    return s;
  }
  detail::ThreadScratch* scratch_ = nullptr;
  std::vector<float> partial_;     // per-chunk weight-gradient partials, grows only
  std::vector<float> wpack_;       // packWeights
  int64_t packed_group_ = 0;       // floats of one group in wpack_
  rank_reduction::FixedSum wsum_;  // their exact sum
};

}  // namespace

void registerConvOps(OpRegistry& r) {
  r.add("Conv", [](const Attrs& a) { return std::make_unique<ConvOp>(a); });
}

}  // namespace slim::ops
