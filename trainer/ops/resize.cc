// Resize (opset 10/11/13/18 input forms) and the deprecated Upsample (opset
// 7 attribute / opset 9 input form): nearest on any axes, linear on the last
// two axes (bilinear on NCHW). Each output coordinate maps back to the input
// through coordinate_transformation_mode, computed once per axis into index
// and weight tables (in double, as ONNX's reference does). Backward scatters
// dy through the same tables; planes are independent (no cross-sample sum),
// so threads split planes and each plane is added in a fixed order.
// Refused with "not supported": cubic, tf_crop_and_resize,
// half_pixel_symmetric, antialias, axes, keep_aspect_ratio_policy != stretch.
#include <cmath>
#include <string>
#include <vector>

#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

// One output axis: nearest index lo (weight 1), or linear taps lo/hi with
// weight w on hi.
struct AxisMap {
  std::vector<int64_t> lo, hi;
  std::vector<float> w;
};

class ResizeOp : public Op {
 public:
  // legacy: Upsample or opset-10 Resize (asymmetric, floor), scales only.
  ResizeOp(const Attrs& a, bool upsample) : upsample_(upsample) {
    mode_ = a.getString("mode", "nearest");
    coord_ = a.getString("coordinate_transformation_mode", "half_pixel");
    nearest_ = a.getString("nearest_mode", "round_prefer_floor");
    attr_scales_ = a.getFloats("scales", {});
    if (mode_ == "bilinear") mode_ = "linear";  // Upsample-7 spelling
    if (mode_ != "nearest" && mode_ != "linear")
      SLIM_THROW(ModelError, "Resize mode '", mode_, "' is not supported (nearest, linear)");
    if (coord_ != "half_pixel" && coord_ != "pytorch_half_pixel" && coord_ != "align_corners" &&
        coord_ != "asymmetric" && coord_ != "tf_half_pixel_for_nn")
      SLIM_THROW(ModelError, "coordinate_transformation_mode '", coord_, "' is not supported");
    if (nearest_ != "round_prefer_floor" && nearest_ != "round_prefer_ceil" &&
        nearest_ != "floor" && nearest_ != "ceil")
      SLIM_THROW(ModelError, "nearest_mode '", nearest_, "' is not supported");
    if (a.getInt("antialias", 0) != 0)
      SLIM_THROW(ModelError, "Resize antialias=1 is not supported");
    if (a.has("axes")) SLIM_THROW(ModelError, "the Resize axes attribute is not supported");
    if (a.getString("keep_aspect_ratio_policy", "stretch") != "stretch")
      SLIM_THROW(ModelError, "keep_aspect_ratio_policy other than stretch is not supported");
  }

  std::vector<int> nonDiffInputs() const override { return {1, 2, 3}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    const Tensor& x = *in[0];
    Tensor& y = *out[0];
    y.resize(out_shape_);
    const float* xp = x.f32();
    float* yp = y.f32();
    if (linear_) {
      // x: (P, H, W) -> y: (P, OH, OW), P = product of the leading axes.
      const AxisMap &mh = maps_[r_ - 2], &mw = maps_[r_ - 1];
      const int64_t H = in_shape_[r_ - 2], W = in_shape_[r_ - 1];
      const int64_t OH = out_shape_[r_ - 2], OW = out_shape_[r_ - 1];
      detail::parallelFor(planes_, [&](int64_t p) {
        const float* xq = xp + p * H * W;
        float* yq = yp + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* r0 = xq + mh.lo[oh] * W;
          const float* r1 = xq + mh.hi[oh] * W;
          const float wh = mh.w[oh];
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t a = mw.lo[ow], b = mw.hi[ow];
            const float ww = mw.w[ow];
            const float top = r0[a] + ww * (r0[b] - r0[a]);
            const float bot = r1[a] + ww * (r1[b] - r1[a]);
            yq[oh * OW + ow] = top + wh * (bot - top);
          }
        }
      });
      return;
    }
    // Nearest: y[p, o] = x[p, src_[o]] per plane p (one plane holding
    // everything when leading axes are resized).
    const int64_t T = static_cast<int64_t>(src_.size()), planes = lead_same_ ? planes_ : 1;
    const int64_t* src = src_.data();
    const int64_t in_plane = lead_same_ ? in_shape_[r_ - 2] * in_shape_[r_ - 1] : 0;
    if (planes == 1) {
      detail::parallelRange(T, 4096, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) yp[o] = xp[src[o]];
      });
      return;
    }
    detail::parallelFor(planes, [&](int64_t p) {
      const float* xq = xp + p * in_plane;
      float* yq = yp + p * T;
      for (int64_t o = 0; o < T; ++o) yq[o] = xq[src[o]];
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext&) override {
    if (din.empty() || !din[0]) return;
    setup(in);
    Tensor& dx = *din[0];
    dx.resize(in[0]->shape());
    dx.zero();
    if (!dout[0]) return;
    const float* dy = dout[0]->f32();
    float* dxp = dx.f32();
    if (linear_) {
      const int64_t H = in_shape_[r_ - 2], W = in_shape_[r_ - 1];
      const int64_t OH = out_shape_[r_ - 2], OW = out_shape_[r_ - 1];
      const AxisMap &mh = maps_[r_ - 2], &mw = maps_[r_ - 1];
      detail::parallelFor(planes_, [&](int64_t p) {
        float* dq = dxp + p * H * W;
        const float* g = dy + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          float* r0 = dq + mh.lo[oh] * W;
          float* r1 = dq + mh.hi[oh] * W;
          const float wh = mh.w[oh];
          for (int64_t ow = 0; ow < OW; ++ow) {
            const float v = g[oh * OW + ow];
            const float top = v * (1.f - wh), bot = v * wh;
            const int64_t a = mw.lo[ow], b = mw.hi[ow];
            const float ww = mw.w[ow];
            r0[a] += top * (1.f - ww);
            r0[b] += top * ww;
            r1[a] += bot * (1.f - ww);
            r1[b] += bot * ww;
          }
        }
      });
      return;
    }
    // Nearest: planes are independent when the leading axes are not
    // resized; otherwise one serial pass.
    const int64_t* src = src_.data();
    const int64_t T = static_cast<int64_t>(src_.size());
    if (lead_same_) {
      const int64_t in_plane = in_shape_[r_ - 2] * in_shape_[r_ - 1];
      detail::parallelFor(planes_, [&](int64_t p) {
        float* dq = dxp + p * in_plane;
        const float* g = dy + p * T;
        for (int64_t o = 0; o < T; ++o) dq[src[o]] += g[o];
      });
    } else {
      for (int64_t o = 0; o < T; ++o) dxp[src[o]] += dy[o];
    }
  }

  // Output shape, per-axis maps and (nearest) the flat source table for the
  // current input shape and scales/sizes.
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(!in.empty() && in[0], label, ": needs input X");
    const Tensor& x = *in[0];
    requireF32(x, label);
    r_ = x.ndim();
    // Input forms: Upsample-7 (scales attribute), Upsample-9 / Resize-10
    // (X, scales), Resize-11+ (X, roi, scales, sizes).
    const bool legacy = upsample_ || in.size() == 2;
    const size_t scales_at = legacy ? 1 : 2;
    const Tensor* scales = in.size() > scales_at ? in[scales_at] : nullptr;
    const Tensor* sizes = !legacy && in.size() > 3 ? in[3] : nullptr;
    if (scales && scales->numel() == 0) scales = nullptr;
    if (sizes && sizes->numel() == 0) sizes = nullptr;
    std::vector<double> sc(static_cast<size_t>(r_), 1.0);
    Shape os = x.shape();
    if (sizes) {
      SLIM_ENFORCE(sizes->numel() == r_, label, ": sizes has ", sizes->numel(),
                   " entries for a rank-", r_, " input");
      const int64_t* s = sizes->data<int64_t>();
      for (int d = 0; d < r_; ++d) {
        os[d] = s[d];
        sc[d] = x.dim(d) > 0 ? static_cast<double>(s[d]) / static_cast<double>(x.dim(d)) : 1.0;
      }
    } else {
      std::vector<float> sv;
      if (scales) {
        requireF32(*scales, label, "scales");
        sv.assign(scales->f32(), scales->f32() + scales->numel());
      } else {
        sv = attr_scales_;
      }
      SLIM_ENFORCE(static_cast<int>(sv.size()) == r_, label, ": scales has ", sv.size(),
                   " entries for a rank-", r_, " input (or neither scales nor sizes given)");
      for (int d = 0; d < r_; ++d) {
        SLIM_ENFORCE(sv[d] > 0.f, label, ": scales must be positive, got ", sv[d]);
        sc[d] = sv[d];
        os[d] = static_cast<int64_t>(std::floor(static_cast<double>(x.dim(d)) * sv[d]));
      }
    }
    for (int d = 0; d < r_; ++d)
      if (os[d] < 0 || (os[d] > 0 && x.dim(d) == 0))
        SLIM_THROW(ShapeError, label, ": cannot resize ", shapeStr(x.shape()), " to ",
                   shapeStr(os));
    if (ready_ && os == out_shape_ && x.shape() == in_shape_ && sc == scales_ &&
        legacy == legacy_)
      return;
    ready_ = false;  // until the tables below are complete
    in_shape_ = x.shape();
    out_shape_ = os;
    scales_ = sc;
    legacy_ = legacy;
    linear_ = mode_ == "linear";
    SLIM_ENFORCE(r_ >= (linear_ ? 2 : 1), label, ": X must have rank >= ", linear_ ? 2 : 1);
    if (linear_ && coord_ == "tf_half_pixel_for_nn")
      SLIM_THROW(ModelError, label, ": tf_half_pixel_for_nn with linear mode is not supported");
    if (legacy_ && !linear_)
      for (int d = 0; d < r_; ++d)
        if (sc[d] < 1.0)
          SLIM_THROW(ModelError, label, ": nearest downsampling in the opset-9/10 form is "
                     "not supported");
    planes_ = 1;
    for (int d = 0; d + 2 < r_; ++d) planes_ *= os[d];
    maps_.assign(static_cast<size_t>(r_), {});
    for (int d = 0; d < r_; ++d) mapAxis(d);
    // Leading axes (all but the last two) mapped to themselves: planes are
    // independent.
    lead_same_ = r_ >= 2;
    for (int d = 0; d + 2 < r_; ++d) {
      lead_same_ = lead_same_ && os[d] == in_shape_[d];
      for (int64_t o = 0; lead_same_ && o < os[d]; ++o)
        lead_same_ = maps_[d].lo[o] == o && maps_[d].w[o] == 0.f;
    }
    if (linear_ && !lead_same_)
      SLIM_THROW(ModelError, label, ": linear resize of axes other than the last two is "
                 "not supported (2-D bilinear only), ", shapeStr(in_shape_), " -> ",
                 shapeStr(os));
    if (!linear_) buildSources();
    ready_ = true;
  }

  // Input coordinate of output coordinate o on axis d.
  double sourceCoord(int d, int64_t o) const {
    const double s = scales_[d], xo = static_cast<double>(o);
    const int64_t in = in_shape_[d];
    // The resized length as ONNX's reference takes it: scale * input length
    // (not the floored output size; they differ only for a scales input).
    const double len = s * static_cast<double>(in);
    if (legacy_) return xo / s;
    if (coord_ == "half_pixel") return (xo + 0.5) / s - 0.5;
    if (coord_ == "pytorch_half_pixel") return len > 1.0 ? (xo + 0.5) / s - 0.5 : 0.0;
    if (coord_ == "align_corners")
      return len == 1.0 ? 0.0 : xo * static_cast<double>(in - 1) / (len - 1.0);
    if (coord_ == "tf_half_pixel_for_nn") return (xo + 0.5) / s;
    return xo / s;  // asymmetric
  }

  int64_t nearestIndex(double v) const {
    if (legacy_ || nearest_ == "floor") return static_cast<int64_t>(std::floor(v));
    if (nearest_ == "ceil") return static_cast<int64_t>(std::ceil(v));
    const double f = std::floor(v);
    if (v - f == 0.5) return static_cast<int64_t>(nearest_ == "round_prefer_ceil" ? f + 1 : f);
    return static_cast<int64_t>(std::round(v));
  }

  void mapAxis(int d) {
    AxisMap& m = maps_[static_cast<size_t>(d)];
    const int64_t in = in_shape_[d], out = out_shape_[d];
    m.lo.resize(static_cast<size_t>(out));
    m.hi.resize(static_cast<size_t>(out));
    m.w.resize(static_cast<size_t>(out));
    auto clampIdx = [in](int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), in - 1); };
    for (int64_t o = 0; o < out; ++o) {
      const double v = sourceCoord(d, o);
      if (linear_) {
        // Taps floor(v), floor(v) + 1 clamped to the edges (edge padding).
        const double f = std::floor(v);
        m.lo[o] = clampIdx(static_cast<int64_t>(f));
        m.hi[o] = clampIdx(static_cast<int64_t>(f) + 1);
        m.w[o] = static_cast<float>(v - f);
      } else {
        m.lo[o] = m.hi[o] = clampIdx(nearestIndex(v));
        m.w[o] = 0.f;
      }
    }
  }

  // src_[o] = flat input index of output o (nearest), row-major odometer
  // over the last two axes (within a plane) when lead_same_, else all axes.
  void buildSources() {
    const int first = lead_same_ ? r_ - 2 : 0;
    int64_t n = 1;
    for (int d = first; d < r_; ++d) n *= out_shape_[d];
    src_.resize(static_cast<size_t>(n));
    std::vector<int64_t> istride(static_cast<size_t>(r_), 1), idx(static_cast<size_t>(r_), 0);
    for (int d = r_ - 2; d >= 0; --d) istride[d] = istride[d + 1] * in_shape_[d + 1];
    for (int64_t o = 0; o < n; ++o) {
      int64_t s = 0;
      for (int d = first; d < r_; ++d) s += maps_[d].lo[idx[d]] * istride[d];
      src_[o] = s;
      for (int d = r_ - 1; d >= first; --d) {
        if (++idx[d] < out_shape_[d]) break;
        idx[d] = 0;
      }
    }
  }

  bool upsample_;
  std::string mode_, coord_, nearest_;
  std::vector<float> attr_scales_;  // Upsample-7
  int r_ = 0;
  bool ready_ = false, legacy_ = false, linear_ = false, lead_same_ = false;
  int64_t planes_ = 0;                // product of the leading output axes
  Shape in_shape_, out_shape_;
  std::vector<double> scales_;
  std::vector<AxisMap> maps_;         // per axis
  std::vector<int64_t> src_;          // nearest: flat source per output (of a plane)
};

}  // namespace

void registerResizeOps(OpRegistry& r) {
  r.add("Resize", [](const Attrs& a) { return std::make_unique<ResizeOp>(a, false); });
  r.add("Upsample", [](const Attrs& a) { return std::make_unique<ResizeOp>(a, true); });
}

}  // namespace slim::ops
