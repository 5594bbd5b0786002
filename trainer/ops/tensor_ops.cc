// Tensor creation and indexing: Constant, Shape, ConstantOfShape, Cast,
// Gather (scatter-add backward), Expand (reduce backward) and Pad (constant,
// reflect, edge; backward scatters through the same index tables).
#include <algorithm>
#include <cstring>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/dtype_dispatch.h"
#include "trainer/ops/op.h"
#include "trainer/ops/op_preamble.h"

namespace slim::ops {
namespace {

// The values of an int64 (or int32) tensor into `v` (capacity reused).
void intsInto(const Tensor& t, std::vector<int64_t>& v) {
  v.resize(t.numel());
  if (t.dtype() == DType::kI32) {
    const int32_t* p = t.data<int32_t>();
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = p[i];
  } else {
    const int64_t* p = t.data<int64_t>();
    std::copy(p, p + t.numel(), v.begin());
  }
}
std::vector<int64_t> intsOf(const Tensor& t) {
  std::vector<int64_t> v;
  intsInto(t, v);
  return v;
}

// Ops that only produce values from attributes/shapes: no gradient.
class NoGradOp : public Op {
 public:
  bool differentiable() const override { return false; }
};

class ConstantOp : public NoGradOp {
 public:
  explicit ConstantOp(const Attrs& a) {
    if (a.has("value")) {
      value_ = a.getTensor("value");
    } else if (a.has("value_float")) {
      value_ = Tensor::scalar(a.getFloat("value_float"));
    } else if (a.has("value_floats")) {
      auto v = a.getFloats("value_floats", {});
      value_ = Tensor::fromVector({static_cast<int64_t>(v.size())}, v);
    } else if (a.has("value_int")) {
      value_ = Tensor::fromInts({}, {a.getInt("value_int")});
    } else if (a.has("value_ints")) {
      auto v = a.getInts("value_ints");
      value_ = Tensor::fromInts({static_cast<int64_t>(v.size())}, v);
    } else {
      SLIM_THROW(ModelError, "Constant: none of value, value_float(s), value_int(s) is set");
    }
  }
  void forward(const std::vector<Tensor*>&, const std::vector<Tensor*>& out,
               RunContext&) override {
    *out[0] = value_;  // shares the attribute's storage; consumers do not write inputs
  }

 private:
  Tensor value_;
};

class ShapeOp : public NoGradOp {
 public:
  explicit ShapeOp(const Attrs& a) : start_(a.getInt("start", 0)), end_(a.getInt("end", INT64_MAX)) {}
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    const Shape& s = in[0]->shape();
    const int64_t r = static_cast<int64_t>(s.size());
    auto clampIdx = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
    const int64_t b = clampIdx(start_), e = clampIdx(end_);
    const int64_t n = std::max<int64_t>(0, e - b);
    out[0]->resize({n}, DType::kI64);
    for (int64_t i = 0; i < n; ++i) out[0]->data<int64_t>()[i] = s[b + i];
  }

 private:
  int64_t start_, end_;
};

class ConstantOfShapeOp : public NoGradOp {
 public:
  explicit ConstantOfShapeOp(const Attrs& a)
      : value_(a.has("value") ? a.getTensor("value") : Tensor::scalar(0.f)) {
    SLIM_ENFORCE_EQ(value_.numel(), 1, "ConstantOfShape: value must hold one element");
  }
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    out[0]->resize(intsOf(*in[0]), value_.dtype());
    const size_t es = dtypeSize(value_.dtype());
    auto* y = static_cast<char*>(out[0]->raw());
    for (int64_t i = 0; i < out[0]->numel(); ++i) std::memcpy(y + i * es, value_.raw(), es);
  }

 private:
  Tensor value_;
};

// Cast: `to` is the ONNX TensorProto enum (1 FLOAT, 2 UINT8, 3 INT8, 6 INT32,
// 7 INT64, 9 BOOL -> uint8 0/1).
class CastOp : public ShapeOnlyBackwardOp {
 public:
  explicit CastOp(const Attrs& a) : to_(a.getInt("to")) {
    switch (to_) {
      case 1: dt_ = DType::kF32; break;
      case 2: case 9: dt_ = DType::kU8; break;
      case 3: dt_ = DType::kI8; break;
      case 6: dt_ = DType::kI32; break;
      case 7: dt_ = DType::kI64; break;
      default: SLIM_THROW(ModelError, "Cast: unsupported target type ", to_);
    }
  }
  bool differentiable() const override { return to_ == 1; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    const Tensor& x = *in[0];
    if (x.dtype() == dt_ && to_ != 9) {
      *out[0] = x;
      return;
    }
    out[0]->resize(x.shape(), dt_);
    detail::dispatchDType(x.dtype(), [&](auto s) {
      using S = decltype(s);
      detail::dispatchDType(dt_, [&](auto d) {
        using D = decltype(d);
        const S* xp = x.data<S>();
        D* y = out[0]->data<D>();
        const int64_t n = x.numel();
        if (to_ == 9) {
          for (int64_t i = 0; i < n; ++i) y[i] = static_cast<D>(xp[i] != S(0));
        } else {
          for (int64_t i = 0; i < n; ++i) y[i] = static_cast<D>(xp[i]);
        }
      });
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (din.empty() || !din[0]) return;
    din[0]->resize(in[0]->shape());
    if (dout[0] && in[0]->dtype() == DType::kF32) {
      din[0]->copyFrom(*dout[0]);
    } else {
      din[0]->zero();
    }
  }

 private:
  int64_t to_;
  DType dt_;
};

// Gather(data, indices) along `axis`; any dtype for data, int64/int32 indices.
class GatherOp : public ShapeOnlyBackwardOp {
 public:
  explicit GatherOp(const Attrs& a) : axis_(a.getInt("axis", 0)) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs data and indices");
    const Tensor& x = *in[0];
    const int ax = normalizeAxis(axis_, x.ndim(), label.c_str());
    outer_ = inner_ = 1;
    for (int d = 0; d < ax; ++d) outer_ *= x.shape()[d];
    for (int d = ax + 1; d < x.ndim(); ++d) inner_ *= x.shape()[d];
    len_ = x.shape()[ax];
    intsInto(*in[1], idx_);
    for (int64_t& i : idx_) {
      SLIM_ENFORCE(i >= -len_ && i < len_, label, ": index ", i, " out of range for axis size ", len_);
      if (i < 0) i += len_;
    }
    Shape s(x.shape().begin(), x.shape().begin() + ax);
    for (int64_t d : in[1]->shape()) s.push_back(d);
    for (int d = ax + 1; d < x.ndim(); ++d) s.push_back(x.shape()[d]);
    out[0]->resize(s, x.dtype());
    const size_t es = dtypeSize(x.dtype()), row = inner_ * es;
    const auto* xp = static_cast<const char*>(x.raw());
    auto* y = static_cast<char*>(out[0]->raw());
    const int64_t m = static_cast<int64_t>(idx_.size());
    for (int64_t o = 0; o < outer_; ++o)
      for (int64_t j = 0; j < m; ++j)
        std::memcpy(y + (o * m + j) * row, xp + (o * len_ + idx_[j]) * row, row);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext& ctx) override {
    if (!beginScatterBackward(in, dout, din)) return;
    const float* g = dout[0]->f32();
    float* d = din[0]->f32();
    const int64_t m = static_cast<int64_t>(idx_.size());
    if (rankReduced(0)) {
      // A table (an embedding) gathered by the batch's indices: its gradient
      // sums over the samples, added in fixed point (exact on any ranks).
      sum_.reset(static_cast<size_t>(in[0]->numel()));
      sum_.setShift(gradShift(0, ctx));
      for (int64_t o = 0; o < outer_; ++o)
        for (int64_t j = 0; j < m; ++j) {
          const int64_t dr = (o * len_ + idx_[j]) * inner_;
          const float* gr = g + (o * m + j) * inner_;
          for (int64_t i = 0; i < inner_; ++i) sum_.add(static_cast<size_t>(dr + i), gr[i]);
        }
      finishSum(0, sum_, ctx, d);
      return;
    }
    for (int64_t o = 0; o < outer_; ++o)
      for (int64_t j = 0; j < m; ++j) {
        float* dr = d + (o * len_ + idx_[j]) * inner_;
        const float* gr = g + (o * m + j) * inner_;
        for (int64_t i = 0; i < inner_; ++i) dr[i] += gr[i];
      }
  }

  std::vector<int> nonDiffInputs() const override { return {1}; }
  bool reducesGradOverRanks(int i) const override { return i == 0; }

 private:
  int64_t axis_, outer_ = 1, inner_ = 1, len_ = 1;
  std::vector<int64_t> idx_;
  rank_reduction::FixedSum sum_;  // the table's gradient when rank-reduced
};

// Expand(data, shape): broadcast data to broadcastShape(data, shape).
class ExpandOp : public ShapeOnlyBackwardOp {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs data and shape");
    const Tensor& x = *in[0];
    const Shape s = broadcastShape(x.shape(), intsOf(*in[1]));
    if (!plan_.matches(s, x.shape())) plan_.init(s, x.shape());
    out[0]->resize(s, x.dtype());
    // Operand a is the output itself (values ignored), b is the data.
    if (x.dtype() == DType::kF32) {
      broadcastApply<float>(plan_, out[0]->f32(), x.f32(), out[0]->f32(),
                            [](float, float v) { return v; });
    } else if (x.dtype() == DType::kI64) {
      auto* y = out[0]->data<int64_t>();
      broadcastApply<int64_t>(plan_, y, x.data<int64_t>(), y,
                              [](int64_t, int64_t v) { return v; });
    } else {
      SLIM_THROW(ModelError, label, ": unsupported dtype ", dtypeName(x.dtype()));
    }
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (din.empty() || !din[0]) return;
    din[0]->resize(in[0]->shape());
    if (!dout[0]) return din[0]->zero();
    plan_.reduceTo(1, dout[0]->f32(), din[0]->f32());
  }
  std::vector<int> nonDiffInputs() const override { return {1}; }

 private:
  BroadcastPlan plan_;
};

// Pad(data, pads, constant_value, axes): pads as attribute (opset < 11) or
// int64 input [begin..., end...]; negative pads crop. Each output coordinate
// maps, per dim, to an input coordinate or -1 (constant); the tables drive
// both forward and the scatter-add backward.
class PadOp : public ShapeOnlyBackwardOp {
 public:
  explicit PadOp(const Attrs& a)
      : mode_(a.getString("mode", "constant")),
        attr_pads_(a.getInts("pads", {})),
        attr_value_(a.getFloat("value", 0.f)) {
    if (mode_ != "constant" && mode_ != "reflect" && mode_ != "edge")
      SLIM_THROW(ModelError, "Pad: unsupported mode '", mode_, "'");
  }
  std::vector<int> nonDiffInputs() const override { return {1, 2, 3}; }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    const Tensor& x = requireF32Input(in, label);
    const int r = x.ndim();
    value_ = attr_value_;
    if (in.size() > 2 && in[2] && in[2]->numel() > 0) value_ = in[2]->f32()[0];
    std::vector<int64_t> pads = in.size() > 1 && in[1] ? intsOf(*in[1]) : attr_pads_;
    std::vector<int64_t> full(2 * r, 0);
    if (in.size() > 3 && in[3]) {  // opset 18: pads only for the listed axes
      const auto axes = intsOf(*in[3]);
      SLIM_ENFORCE_EQ(pads.size(), 2 * axes.size(), label, ": pads vs axes");
      for (size_t k = 0; k < axes.size(); ++k) {
        const int d = normalizeAxis(axes[k], r, label.c_str());
        full[d] = pads[k];
        full[r + d] = pads[axes.size() + k];
      }
    } else {
      SLIM_ENFORCE_EQ(static_cast<int64_t>(pads.size()), 2 * r, label, ": pads length vs rank");
      full = pads;
    }
    Shape os(r);
    map_off_.assign(r + 1, 0);
    map_.clear();
    for (int d = 0; d < r; ++d) {
      const int64_t n = x.shape()[d];
      os[d] = n + full[d] + full[r + d];
      SLIM_ENFORCE_GE(os[d], 0, label, ": pads crop dimension ", d, " below zero");
      SLIM_ENFORCE(mode_ != "reflect" || n > 1 || os[d] == n, label,
                   ": reflect padding of a size-1 dimension");
      SLIM_ENFORCE(mode_ == "constant" || n > 0 || os[d] == 0, label,
                   ": ", mode_, " padding of an empty dimension");
      for (int64_t o = 0; o < os[d]; ++o) map_.push_back(source(o - full[d], n));
      map_off_[d + 1] = static_cast<int64_t>(map_.size());
    }
    in_st_.assign(r, 1);
    for (int d = r - 2; d >= 0; --d) in_st_[d] = in_st_[d + 1] * x.shape()[d + 1];
    out[0]->resize(os);
    const float* xp = x.f32();
    const float v = value_;
    walk(os, [&](int64_t o, int64_t base, const int64_t* m, int64_t n) {
      float* y = out[0]->f32() + o;
      if (base < 0) {
        for (int64_t i = 0; i < n; ++i) y[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = m[i] >= 0 ? xp[base + m[i]] : v;
      }
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                const std::vector<const Tensor*>& dout,
                const std::vector<Tensor*>& din, RunContext&) override {
    if (!beginScatterBackward(in, dout, din)) return;
    const float* g = dout[0]->f32();
    float* d = din[0]->f32();
    walk(out[0]->shape(), [&](int64_t o, int64_t base, const int64_t* m, int64_t n) {
      if (base < 0) return;
      for (int64_t i = 0; i < n; ++i)
        if (m[i] >= 0) d[base + m[i]] += g[o + i];
    });
  }

 private:
  // Input coordinate for (unclamped) coordinate c of a size-n dim, -1 = constant.
  int64_t source(int64_t c, int64_t n) const {
    if (c >= 0 && c < n) return c;
    if (mode_ == "constant") return -1;
    if (mode_ == "edge") return c < 0 ? 0 : n - 1;
    const int64_t period = 2 * (n - 1);  // reflect without repeating the edge
    c = ((c % period) + period) % period;
    return c < n ? c : period - c;
  }

  // fn(out offset, input offset of the row or -1, last-dim map, row length).
  template <class Fn>
  void walk(const Shape& os, Fn&& fn) const {
    const int r = static_cast<int>(os.size());
    const int64_t total = numelOf(os);
    if (total == 0) return;
    if (r == 0) {
      const int64_t zero = 0;
      fn(0, 0, &zero, 1);
      return;
    }
    const int64_t n = os[r - 1];
    const int64_t* last = map_.data() + map_off_[r - 1];
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < total; o += n) {
      int64_t base = 0;
      for (int d = 0; d < r - 1 && base >= 0; ++d) {
        const int64_t m = map_[map_off_[d] + idx[d]];
        base = m < 0 ? -1 : base + m * in_st_[d];
      }
      fn(o, base, last, n);
      for (int d = r - 2; d >= 0; --d) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
  }

  std::string mode_;
  std::vector<int64_t> attr_pads_;
  float attr_value_, value_ = 0.f;
  std::vector<int64_t> map_, map_off_, in_st_;
};

}  // namespace

void registerTensorOps(OpRegistry& r) {
  r.add("Constant", [](const Attrs& a) { return std::make_unique<ConstantOp>(a); });
  r.add("Shape", [](const Attrs& a) { return std::make_unique<ShapeOp>(a); });
  r.add("ConstantOfShape", [](const Attrs& a) { return std::make_unique<ConstantOfShapeOp>(a); });
  r.add("Cast", [](const Attrs& a) { return std::make_unique<CastOp>(a); });
  r.add("Gather", [](const Attrs& a) { return std::make_unique<GatherOp>(a); });
  r.add("Expand", [](const Attrs&) { return std::make_unique<ExpandOp>(); });
  r.add("Pad", [](const Attrs& a) { return std::make_unique<PadOp>(a); });
}

}  // namespace slim::ops
