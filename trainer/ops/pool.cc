// MaxPool, AveragePool and GlobalAveragePool (ONNX, 2-D windows) with
// strides, pads, dilations, auto_pad and ceil_mode. MaxPool remembers the
// winning input position of every output for backward; AveragePool divides by
// the taps inside the input (count_include_pad=0) or inside the padded input
// (count_include_pad=1; taps past the end padding, which ceil_mode can
// create, never count -- PyTorch/ONNX Runtime behaviour).
#include <algorithm>
#include <limits>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

using detail::Axis;

// Shared window set-up of MaxPool and AveragePool.
class WindowPool : public ShapeOnlyBackwardOp {
 protected:
  explicit WindowPool(const Attrs& a) : wa_(detail::readWindowAttrs(a, true)) {}

  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs input X");
    const Tensor& x = *in[0];
    requireF32(x, label);
    if (x.ndim() != 4)
      SLIM_THROW(ModelError, label, ": only 2-D pooling (4-D X) is supported, X is ",
                 shapeStr(x.shape()));
    NC_ = x.dim(0) * x.dim(1);
    detail::resolveAxes(wa_, x.dim(2), x.dim(3), wa_.kernel[0], wa_.kernel[1], label, ah_,
                        aw_);
  }

 public:
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    Tensor* dx = zeroedInputGrad(in, dout, din);
    if (dx == nullptr) return;
    addInputGrad(dout[0]->f32(), dx->f32());
  }

 protected:
  // Adds the output gradient dy (NC, OH, OW) into dx (NC, H, W), zeroed.
  virtual void addInputGrad(const float* dy, float* dx) = 0;

  // The forward loop after setup(): sizes y (N, C, OH, OW) and writes
  // y[o] = f(xp, oh, ow, o) for every output o = (p * OH + oh) * OW + ow,
  // with xp the (H, W) plane p of x. Planes in parallel (f must only write
  // what belongs to output o).
  template <class F>
  void forEachOutput(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out, F&& f) {
    const int64_t H = ah_.in, W = aw_.in, OH = ah_.out, OW = aw_.out;
    Tensor& y = *out[0];
    y.resize({in[0]->dim(0), in[0]->dim(1), OH, OW});
    const float* x = in[0]->f32();
    float* yp = y.f32();
    detail::parallelFor(NC_, [&](int64_t p) {
      const float* xp = x + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t o = (p * OH + oh) * OW + ow;
          yp[o] = f(xp, oh, ow, o);
        }
    });
  }
  // The taps [lo[o], hi[o]) of each output o of an axis that fall inside the
  // input (ascending, as the windows scan them), set by tapRanges().
  struct TapRanges {
    std::vector<int64_t> lo, hi;
  };
  static void tapRanges(const Axis& a, TapRanges& r) {
    r.lo.assign(static_cast<size_t>(a.out), a.kernel);
    r.hi.assign(static_cast<size_t>(a.out), 0);
    for (int64_t o = 0; o < a.out; ++o)
      for (int64_t t = 0; t < a.kernel; ++t) {
        const int64_t i = coord(a, o, t);
        if (i < 0 || i >= a.in) continue;
        r.lo[o] = std::min(r.lo[o], t);
        r.hi[o] = t + 1;
      }
  }
  // Start of backward: the zeroed input gradient, or null when none is wanted
  // or no output gradient flows (dx stays zero then).
  Tensor* zeroedInputGrad(const std::vector<Tensor*>& in,
                          const std::vector<const Tensor*>& dout,
                          const std::vector<Tensor*>& din) {
    if (din.empty() || !din[0]) return nullptr;
    setup(in);
    Tensor& dx = *din[0];
    dx.resize(in[0]->shape());
    dx.zero();
    return dout[0] ? &dx : nullptr;
  }
  // Input coordinate of output o at tap t.
  static int64_t coord(const Axis& a, int64_t o, int64_t t) {
    return o * a.stride - a.pad_begin + t * a.dilation;
  }

  detail::WindowAttrs wa_;
  int64_t NC_ = 0;
  Axis ah_, aw_;
};

class MaxPoolOp : public WindowPool {
 public:
  explicit MaxPoolOp(const Attrs& a) : WindowPool(a) {
    if (a.getInt("storage_order", 0) != 0)
      SLIM_THROW(ModelError, "MaxPool storage_order=1 is not supported");
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const int64_t W = aw_.in;
    // x: (NC, H, W) -> y: (NC, OH, OW); arg_: flat h*W+w of the max, -1 if
    // none. Taps in window order (kh, then kw), the first strictly greater
    // wins; the out-of-input taps skipped by the ranges (a dilated window's
    // inside taps are contiguous in t).
    if (backward_needed_) arg_.resize(static_cast<size_t>(NC_ * ah_.out * aw_.out));
    tapRanges(ah_, rh_);
    tapRanges(aw_, rw_);
    // The columns whose windows lie inside the input run tap by tap over a
    // whole row (vectorised); the same comparisons in the same order per
    // output as the window loop below, which takes the border columns.
    int64_t ow_lo = 0, ow_hi = 0;
    for (int64_t ow = 0; ow < aw_.out; ++ow)
      if (rw_.lo[ow] == 0 && rw_.hi[ow] == aw_.kernel) {
        if (ow_hi == 0) ow_lo = ow;
        ow_hi = ow + 1;
      }
    // A node that never runs backward (a frozen teacher's) keeps no argmax.
    int32_t* const arg = backward_needed_ ? arg_.data() : nullptr;
    auto window = [&](const float* xp, int64_t oh, int64_t ow, int64_t o) {
      const int64_t kh0 = rh_.lo[oh], kh1 = rh_.hi[oh], kw0 = rw_.lo[ow], kw1 = rw_.hi[ow];
      if (kh0 >= kh1 || kw0 >= kw1) {
        if (arg) arg[o] = -1;
        return -std::numeric_limits<float>::infinity();
      }
      const int64_t iw0 = coord(aw_, ow, 0), dw = aw_.dilation;
      // The first inside tap, then branch-free selects (random data makes a
      // branch on the comparison mispredict).
      int32_t at = static_cast<int32_t>(coord(ah_, oh, kh0) * W + iw0 + kw0 * dw);
      float best = xp[at];
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const int64_t row = coord(ah_, oh, kh) * W + iw0;
        for (int64_t kw = kh == kh0 ? kw0 + 1 : kw0; kw < kw1; ++kw) {
          const int32_t i = static_cast<int32_t>(row + kw * dw);
          const float v = xp[i];
          const bool gt = v > best;
          best = gt ? v : best;
          at = gt ? i : at;
        }
      }
      if (arg) arg[o] = at;
      return best;
    };
    const int64_t OH = ah_.out, OW = aw_.out, HW = ah_.in * W;
    Tensor& y = *out[0];
    y.resize({in[0]->dim(0), in[0]->dim(1), OH, OW});
    const float* x = in[0]->f32();
    float* yp = y.f32();
    taps_.ensureThreads();
    detail::parallelFor(NC_, [&](int64_t p) {
      const float* xp = x + p * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t o0 = (p * OH + oh) * OW, kh0 = rh_.lo[oh], kh1 = rh_.hi[oh];
        const bool rows = kh0 < kh1 && ow_lo < ow_hi;
        for (int64_t ow = 0; ow < OW; ++ow)
          if (!rows || ow < ow_lo || ow >= ow_hi) yp[o0 + ow] = window(xp, oh, ow, o0 + ow);
        if (!rows) continue;
        float* __restrict yr = yp + o0 + ow_lo;
        int32_t* __restrict ar = arg ? arg + o0 + ow_lo : nullptr;
        const int64_t sw = aw_.stride, dw = aw_.dilation, n = ow_hi - ow_lo;
        // Each tap's strided inputs are first copied to a contiguous row, so
        // that the compare-and-select loop vectorises (over strided loads GCC
        // left it a scalar branch that random data mispredicts).
        float* __restrict tap = taps_.get(static_cast<size_t>(n));
        for (int64_t kh = kh0; kh < kh1; ++kh) {
          const int64_t row = coord(ah_, oh, kh) * W + coord(aw_, ow_lo, 0);
          for (int64_t kw = 0; kw < aw_.kernel; ++kw) {
            const int32_t off = static_cast<int32_t>(row + kw * dw);
            const int32_t step = static_cast<int32_t>(sw);
            if (kh == kh0 && kw == 0) {
              detail::copyStrided(yr, xp + off, n, sw);
              if (ar)
                for (int64_t j = 0; j < n; ++j) ar[j] = off + static_cast<int32_t>(j) * step;
              continue;
            }
            detail::copyStrided(tap, xp + off, n, sw);
            if (!ar) {  // the same comparisons, no argmax
              for (int64_t j = 0; j < n; ++j) yr[j] = tap[j] > yr[j] ? tap[j] : yr[j];
              continue;
            }
            for (int64_t j = 0; j < n; ++j) {
              const float v = tap[j];
              const int32_t i = off + static_cast<int32_t>(j) * step;
              const bool gt = v > yr[j];
              yr[j] = gt ? v : yr[j];
              ar[j] = gt ? i : ar[j];
            }
          }
        }
      }
    });
  }

  void setBackwardNeeded(bool needed) override { backward_needed_ = needed; }

  void addInputGrad(const float* dy, float* dxp) override {
    const int64_t HW = ah_.in * aw_.in, P = ah_.out * aw_.out;
    SLIM_ENFORCE(backward_needed_, label, ": backward of a node the executor marked forward-only");
    SLIM_ENFORCE_EQ(static_cast<int64_t>(arg_.size()), NC_ * P, label,
                    ": backward without a matching forward");
    detail::parallelFor(NC_, [&](int64_t p) {
      for (int64_t o = 0; o < P; ++o) {
        const int32_t a = arg_[p * P + o];
        if (a >= 0) dxp[p * HW + a] += dy[p * P + o];
      }
    });
  }

 private:
  std::vector<int32_t> arg_;
  bool backward_needed_ = true;  // setBackwardNeeded: false keeps no argmax
  TapRanges rh_, rw_;          // valid taps per output row / column
  detail::ThreadScratch taps_;  // one tap's inputs over a row of outputs
};

class AveragePoolOp : public WindowPool {
 public:
  explicit AveragePoolOp(const Attrs& a)
      : WindowPool(a), include_pad_(a.getInt("count_include_pad", 0) != 0) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const int64_t W = aw_.in;
    forEachOutput(in, out, [&](const float* xp, int64_t oh, int64_t ow, int64_t) {
      float s = 0.f;
      forTaps(oh, ow, [&](int64_t ih, int64_t iw) { s += xp[ih * W + iw]; });
      return s * invCount(oh, ow);
    });
  }

  void addInputGrad(const float* dy, float* dxp) override {
    const int64_t H = ah_.in, W = aw_.in, OH = ah_.out, OW = aw_.out;
    detail::parallelFor(NC_, [&](int64_t p) {
      float* dxc = dxp + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const float g = dy[(p * OH + oh) * OW + ow] * invCount(oh, ow);
          forTaps(oh, ow, [&](int64_t ih, int64_t iw) { dxc[ih * W + iw] += g; });
        }
    });
  }

 private:
  // Calls f(ih, iw) for every tap of output (oh, ow) inside the input.
  template <class F>
  void forTaps(int64_t oh, int64_t ow, F&& f) const {
    for (int64_t kh = 0; kh < ah_.kernel; ++kh) {
      const int64_t ih = coord(ah_, oh, kh);
      if (ih < 0 || ih >= ah_.in) continue;
      for (int64_t kw = 0; kw < aw_.kernel; ++kw) {
        const int64_t iw = coord(aw_, ow, kw);
        if (iw >= 0 && iw < aw_.in) f(ih, iw);
      }
    }
  }
  // Number of taps of one axis counted in the divisor.
  int64_t taps(const Axis& a, int64_t o) const {
    const int64_t lo = include_pad_ ? -a.pad_begin : 0;
    const int64_t hi = include_pad_ ? a.in + a.pad_end : a.in;
    int64_t n = 0;
    for (int64_t t = 0; t < a.kernel; ++t) {
      const int64_t i = coord(a, o, t);
      n += i >= lo && i < hi;
    }
    return n;
  }
  float invCount(int64_t oh, int64_t ow) const {
    const int64_t n = taps(ah_, oh) * taps(aw_, ow);
    return n > 0 ? 1.f / static_cast<float>(n) : 0.f;
  }

  bool include_pad_;
};

class GlobalAveragePoolOp : public ShapeOnlyBackwardOp {
 public:
  explicit GlobalAveragePoolOp(const Attrs&) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    Shape ys = in[0]->shape();
    std::fill(ys.begin() + 2, ys.end(), 1);
    out[0]->resize(ys);
    const float* x = in[0]->f32();
    float* y = out[0]->f32();
    const int64_t S = S_;
    // Each plane's sum runs in order from 0 (s += x), as one chain; kLanes
    // planes at a time keep that many independent chains in flight (one
    // chain ran at the add's latency: mobilenet_v3's SE pools 0.6 ms a call),
    // planes over the threads in blocks. The same adds, in the same order.
    detail::parallelRange(NC_, std::max<int64_t>(1, detail::kGrainCheap / S),
                          [&](int64_t b, int64_t e) {
                            constexpr int64_t kLanes = 8;
                            int64_t p = b;
                            for (; p + kLanes <= e; p += kLanes) {
                              float s[kLanes] = {};
                              const float* xp = x + p * S;
                              for (int64_t i = 0; i < S; ++i)
                                for (int64_t j = 0; j < kLanes; ++j) s[j] += xp[j * S + i];
                              for (int64_t j = 0; j < kLanes; ++j)
                                y[p + j] = s[j] / static_cast<float>(S);
                            }
                            for (; p < e; ++p) {
                              float s = 0.f;
                              for (int64_t i = 0; i < S; ++i) s += x[p * S + i];
                              y[p] = s / static_cast<float>(S);
                            }
                          });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    if (din.empty() || !din[0]) return;
    setup(in);
    din[0]->resize(in[0]->shape());
    if (!dout[0]) { din[0]->zero(); return; }
    const float* dy = dout[0]->f32();
    float* dx = din[0]->f32();
    const int64_t S = S_;
    detail::parallelRange(NC_, std::max<int64_t>(1, detail::kGrainCheap / S),
                          [&](int64_t b, int64_t e) {
                            for (int64_t p = b; p < e; ++p) {
                              const float g = dy[p] / static_cast<float>(S);
                              std::fill(dx + p * S, dx + (p + 1) * S, g);
                            }
                          });
  }

 private:
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs input X");
    const Tensor& x = *in[0];
    requireF32(x, label);
    if (x.ndim() < 3)
      SLIM_THROW(ShapeError, label, ": X must be [N, C, spatial...], got ",
                 shapeStr(x.shape()));
    NC_ = x.dim(0) * x.dim(1);
    S_ = x.numel() / std::max<int64_t>(1, NC_);
    SLIM_ENFORCE(S_ > 0, label, ": empty spatial dimensions in ", shapeStr(x.shape()));
  }

  int64_t NC_ = 0, S_ = 0;
};

}  // namespace

void registerPoolOps(OpRegistry& r) {
  r.add("MaxPool", [](const Attrs& a) { return std::make_unique<MaxPoolOp>(a); });
  r.add("AveragePool", [](const Attrs& a) { return std::make_unique<AveragePoolOp>(a); });
  r.add("GlobalAveragePool",
        [](const Attrs& a) { return std::make_unique<GlobalAveragePoolOp>(a); });
}

}  // namespace slim::ops
