// Einsum (ONNX opset 12+, attribute `equation`): any number of operands,
// explicit ("->") or implicit output, contraction over letters shared by
// operands, letters summed away, "..." (numpy-broadcast batch dimensions) and
// a letter repeated within one operand (its diagonal).
//
// Operands are contracted left to right, two at a time, as a batched GEMM on
// the kernels of conv_kernels.h: the letters of a pair are batch (in both,
// kept), M (first only, kept), N (second only, kept) or K (in both, summed);
// a letter only one operand has and nothing later needs is summed away
// before. An operand already laid out as [batch, M, K] or [batch, K, M] (B:
// [batch, K, N] / [batch, N, K]) is read in place, otherwise packed by one
// strided gather (which also takes diagonals). Every element is computed by
// one thread in a fixed order: the same bits for any thread count.
//
// Backward (one and two operands): the gradient of an operand is the Einsum
// of the output gradient with the other operand, summed over what the operand
// lacks, then spread over the operand's broadcast letters and diagonals. The
// gradient of a weight the executor asks this op to reduce over ranks
// (Op::reducesGradOverRanks) is, as Gemm's, a sum of float partials over
// chunks of kSumChunk consecutive summed indices added in fixed point
// (exact_sum.h). The summed letters are flattened in the data operand's
// axis order, so with a per-rank batch that is a multiple of kSumChunk every
// rank's samples start on a chunk boundary of the whole batch's — whichever
// axis holds the samples — and 1 and N ranks compute the same bits.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/einsum_equation.h"
#include "trainer/ops/einsum_layout.h"
#include "trainer/ops/op.h"

namespace slim::ops {
namespace {

using detail::gemm;
using namespace einsum;  // NOLINT(build/namespaces): this op's own helpers

class EinsumOp : public Op {
 public:
  explicit EinsumOp(const Attrs& a) : equation_(a.getString("equation", "")) {
    einsum::Equation e = einsum::parseEquation(equation_);
    terms_ = std::move(e.inputs);
    out_term_ = std::move(e.output);
  }

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    resolve(in);
    std::vector<View> views;
    for (size_t i = 0; i < in.size(); ++i) views.push_back(viewOf(*in[i], i));
    Tensor& y = *out[0];
    y.resize(outShape());
    if (views.size() == 1) {
      reduceInto(views[0], out_labels_, y.f32());
      return;
    }
    // Left to right; an intermediate keeps the labels the output or a later
    // operand needs, in its natural [batch, M, N] order.
    Labelled cur;
    View acc = views[0];
    for (size_t k = 1; k < views.size(); ++k) {
      const bool last = k + 1 == views.size();
      std::array<bool, kMaxLabels> keep{};
      for (int l : out_labels_) keep[l] = true;
      for (size_t j = k + 1; j < views.size(); ++j)
        for (int l : views[j].labels) keep[l] = true;
      Labelled next;
      if (last) {
        contract(acc, views[k], keep, out_labels_, y.f32(), nullptr);
        return;
      }
      next.labels = contractLabels(acc, views[k], keep);
      Shape s;
      for (int l : next.labels) s.push_back(size_[l]);
      next.t = Tensor(s);
      contract(acc, views[k], keep, next.labels, next.t.f32(), nullptr);
      cur = std::move(next);
      acc = cur.view();
    }
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    if (in.size() > 2)
      SLIM_THROW(Error, label, ": equation '", equation_, "': backward of ", in.size(),
                 " operands is not implemented (1 or 2 operands only)");
    resolve(in);
    std::vector<View> views;
    for (size_t i = 0; i < in.size(); ++i) views.push_back(viewOf(*in[i], i));
    Labelled dy;
    if (dout[0]) {
      SLIM_ENFORCE(dout[0]->shape() == outShape(), label, ": output gradient ",
                   shapeStr(dout[0]->shape()), " vs output ", shapeStr(outShape()));
      dy.t = *dout[0];
      dy.labels = out_labels_;
    }
    for (size_t i = 0; i < in.size(); ++i) {
      if (i >= din.size() || !din[i]) continue;
      Tensor& d = *din[i];
      d.resize(in[i]->shape());
      d.zero();
      if (!dout[0]) continue;
      // G: the gradient over the operand's own labels that the output
      // gradient or the other operand has.
      const View g_view = dy.view();
      const View* other = in.size() == 2 ? &views[1 - i] : nullptr;
      std::array<bool, kMaxLabels> keep{};
      std::vector<int> g_labels;
      for (int l : views[i].labels)
        if (g_view.has(l) || (other && other->has(l))) {
          keep[l] = true;
          g_labels.push_back(l);
        }
      Shape gs;
      for (int l : g_labels) gs.push_back(size_[l]);
      // G is the gradient itself when the operand has each of its labels
      // once, on its own axis.
      const bool whole = g_labels == views[i].labels && in[i]->ndim() == static_cast<int>(gs.size());
      Tensor g;
      if (!whole) g = Tensor(gs);
      float* gp = whole ? d.f32() : g.f32();
      if (!other) {
        reduceInto(g_view, g_labels, gp);
      } else {
        // A weight's gradient (rank-reduced) is summed in chunks, exactly.
        contract(g_view, *other, keep, g_labels, gp, rankReduced(i) ? &ctx : nullptr, i);
      }
      if (whole) continue;
      // Spread G over the operand: broadcast where it lacks a label, onto
      // the diagonal of a repeated letter (elsewhere 0).
      std::vector<Dim> dims;
      int64_t gstride = 1;
      std::vector<int64_t> gst(g_labels.size());
      for (size_t k = g_labels.size(); k-- > 0;) {
        gst[k] = gstride;
        gstride *= gs[k];
      }
      for (size_t k = 0; k < views[i].labels.size(); ++k) {
        const int l = views[i].labels[k];
        int64_t s = 0;
        for (size_t j = 0; j < g_labels.size(); ++j)
          if (g_labels[j] == l) s = gst[j];
        dims.push_back({size_[l], s, views[i].strides[k]});
      }
      stridedSum(g.f32(), d.f32(), dims, {});
    }
  }

  bool reducesGradOverRanks(int i) const override {
    // Two operands, and the other has a letter (or "...") that this one
    // lacks and the output keeps: where the samples can be, summed in this
    // operand's gradient.
    if (terms_.size() != 2 || i < 0 || i > 1) return false;
    const auto& mine = terms_[i].labels;
    const auto& outl = out_term_.labels;
    for (int l : terms_[1 - i].labels)
      if (std::find(mine.begin(), mine.end(), l) == mine.end() &&
          std::find(outl.begin(), outl.end(), l) != outl.end())
        return true;
    return false;
  }

 private:
  std::string where() const { return label + ": equation '" + equation_ + "'"; }

  // Sizes of every label for these inputs; expands the ellipsis (its
  // dimensions right-aligned, numpy broadcasting) and the output's labels.
  void resolve(const std::vector<Tensor*>& in) {
    if (in.size() != terms_.size())
      SLIM_THROW(ShapeError, where(), ": ", terms_.size(), " input terms, found ", in.size(),
                 " inputs");
    size_.fill(-1);
    ell_rank_ = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      SLIM_ENFORCE(in[i], label, ": input ", i, " is missing");
      requireF32(*in[i], label);
      const Term& t = terms_[i];
      const int letters = static_cast<int>(t.labels.size()) - (t.ellipsis ? 1 : 0);
      const int nd = in[i]->ndim();
      if (t.ellipsis ? nd < letters : nd != letters)
        SLIM_THROW(ShapeError, where(), ": input ", i, " has shape ",
                   shapeStr(in[i]->shape()), " (", nd, " dims), its term '", t.text,
                   "' expects ", t.ellipsis ? "at least " : "", letters);
      if (t.ellipsis) ell_rank_ = std::max(ell_rank_, nd - letters);
    }
    if (ell_rank_ > kMaxLabels - kEllipsis)
      SLIM_THROW(ShapeError, where(), ": ", ell_rank_, " dimensions under '...'");
    for (size_t i = 0; i < in.size(); ++i) {
      const std::vector<int> ax = axisLabels(i, in[i]->ndim());
      for (size_t d = 0; d < ax.size(); ++d) {
        const int l = ax[d];
        const int64_t n = in[i]->dim(static_cast<int>(d));
        if (size_[l] < 0 || (l >= kEllipsis && size_[l] == 1)) {
          if (size_[l] < 0 || n != 1) size_[l] = n;
          continue;
        }
        if (n == size_[l] || (l >= kEllipsis && n == 1)) continue;
        if (l >= kEllipsis)
          SLIM_THROW(ShapeError, where(), ": the '...' dimensions of input ", i, " ",
                     shapeStr(in[i]->shape()), " do not broadcast: ", n, " vs ", size_[l]);
        SLIM_THROW(ShapeError, where(), ": letter '", letterOf(l), "' is ", size_[l],
                   " in an earlier input, found ", n, " in input ", i, " ",
                   shapeStr(in[i]->shape()));
      }
    }
    out_labels_.clear();
    for (int l : out_term_.labels) {
      if (l != kEllipsis) {
        out_labels_.push_back(l);
        continue;
      }
      for (int j = 0; j < ell_rank_; ++j) out_labels_.push_back(kEllipsis + j);
    }
  }

  // Labels of input i's axes (ellipsis expanded).
  std::vector<int> axisLabels(size_t i, int ndim) const {
    const Term& t = terms_[i];
    std::vector<int> ax;
    const int e = ndim - (static_cast<int>(t.labels.size()) - (t.ellipsis ? 1 : 0));
    for (int l : t.labels) {
      if (l != kEllipsis) {
        ax.push_back(l);
        continue;
      }
      for (int j = 0; j < e; ++j) ax.push_back(kEllipsis + ell_rank_ - e + j);
    }
    return ax;
  }

  View viewOf(const Tensor& x, size_t i) const {
    const std::vector<int> ax = axisLabels(i, x.ndim());
    View v;
    v.data = x.f32();
    int64_t stride = 1;
    std::vector<int64_t> st(ax.size());
    for (size_t d = ax.size(); d-- > 0;) {
      st[d] = stride;
      stride *= x.dim(static_cast<int>(d));
    }
    for (size_t d = 0; d < ax.size(); ++d) {
      const int l = ax[d];
      if (l >= kEllipsis && x.dim(static_cast<int>(d)) == 1 && size_[l] != 1) continue;
      bool found = false;
      for (size_t k = 0; k < v.labels.size(); ++k)
        if (v.labels[k] == l) {
          v.strides[k] += st[d];
          found = true;
        }
      if (!found) {
        v.labels.push_back(l);
        v.strides.push_back(st[d]);
      }
    }
    return v;
  }

  Shape outShape() const {
    Shape s;
    for (int l : out_labels_) s.push_back(size_[l]);
    return s;
  }

  // dst (dense over `out`, every label in v) = v summed over its other labels.
  void reduceInto(const View& v, const std::vector<int>& out, float* dst) const {
    std::vector<Dim> outer, inner;
    int64_t n = 1;
    for (size_t k = out.size(); k-- > 0;) {
      outer.insert(outer.begin(), Dim{size_[out[k]], v.strideOr0(out[k]), n});
      n *= size_[out[k]];
    }
    for (size_t k = 0; k < v.labels.size(); ++k)
      if (std::find(out.begin(), out.end(), v.labels[k]) == out.end())
        inner.push_back({size_[v.labels[k]], v.strides[k], 0});
    stridedSum(v.data, dst, outer, offsetsOf(inner));
  }

  // The labels of contract(a, b, keep) in its natural order: batch, M, N.
  std::vector<int> contractLabels(const View& a, const View& b,
                                  const std::array<bool, kMaxLabels>& keep) const {
    std::vector<int> bt, m, n;
    for (int l : a.labels)
      if (keep[l]) (b.has(l) ? bt : m).push_back(l);
    for (int l : b.labels)
      if (keep[l] && !a.has(l)) n.push_back(l);
    bt.insert(bt.end(), m.begin(), m.end());
    bt.insert(bt.end(), n.begin(), n.end());
    return bt;
  }

  // An operand of the batched GEMM: rows x cols per batch entry, read in
  // place (transposed when `trans`) or packed into `buf`.
  struct Operand {
    const float* p = nullptr;
    int64_t ld = 0, batch_stride = 0;
    bool trans = false;
  };

  // Lays v out as [bt, rows, cols] per batch entry, summing labels in none of
  // the lists first; in place when v already is [bt, rows, cols] (or
  // [bt, cols, rows]: trans) densely.
  Operand prepare(const View& v, const std::vector<int>& bt, const std::vector<int>& rows,
                  const std::vector<int>& cols, std::vector<float>& buf) const {
    auto prod = [&](const std::vector<int>& ls) {
      int64_t p = 1;
      for (int l : ls) p *= size_[l];
      return p;
    };
    const int64_t R = prod(rows), C = prod(cols);
    std::vector<int> listed;
    for (const auto* ls : {&bt, &rows, &cols}) listed.insert(listed.end(), ls->begin(), ls->end());
    bool extra = false;
    for (int l : v.labels)
      extra = extra || std::find(listed.begin(), listed.end(), l) == listed.end();
    // Does v have dense strides for this order? (size-1 labels never matter)
    auto dense = [&](const std::vector<const std::vector<int>*>& order) {
      int64_t s = 1;
      for (size_t g = order.size(); g-- > 0;)
        for (size_t k = order[g]->size(); k-- > 0;) {
          const int l = (*order[g])[k];
          if (size_[l] != 1 && v.stride(l) != s) return false;
          s *= size_[l];
        }
      return true;
    };
    Operand o;
    o.batch_stride = R * C;
    if (!extra && dense({&bt, &rows, &cols})) {
      o.p = v.data;
      o.ld = C;
      return o;
    }
    if (!extra && dense({&bt, &cols, &rows})) {
      o.p = v.data;
      o.ld = R;
      o.trans = true;
      return o;
    }
    std::vector<Dim> outer, inner;
    int64_t n = 1;
    for (const auto* ls : {&cols, &rows, &bt})
      for (size_t k = ls->size(); k-- > 0;) {
        const int l = (*ls)[k];
        outer.insert(outer.begin(), Dim{size_[l], v.strideOr0(l), n});
        n *= size_[l];
      }
    for (size_t k = 0; k < v.labels.size(); ++k)
      if (std::find(listed.begin(), listed.end(), v.labels[k]) == listed.end())
        inner.push_back({size_[v.labels[k]], v.strides[k], 0});
    buf.resize(static_cast<size_t>(std::max<int64_t>(n, 1)));
    stridedSum(v.data, buf.data(), outer, offsetsOf(inner));
    o.p = buf.data();
    o.ld = C;
    return o;
  }

  // dst (dense over `out`, a subset of the kept labels of a and b) = the
  // contraction of a and b, as a batched GEMM. With `ctx` (the gradient of
  // weight input `grad_input`, b the data operand), the summed (K) labels
  // are flattened in b's axis order and summed as float partials over chunks
  // of kSumChunk consecutive indices, added in fixed point and finished over
  // ranks by finishSum.
  void contract(const View& a, const View& b, const std::array<bool, kMaxLabels>& keep,
                const std::vector<int>& out, float* dst, RunContext* ctx,
                size_t grad_input = 0) {
    std::vector<int> bt, m, n, k;
    for (int l : out) {
      if (a.has(l) && b.has(l)) bt.push_back(l);
      else if (a.has(l)) m.push_back(l);
      else n.push_back(l);
    }
    for (int l : (ctx ? b : a).labels)
      if (!keep[l] && a.has(l) && b.has(l)) k.push_back(l);
    auto prod = [&](const std::vector<int>& ls) {
      int64_t p = 1;
      for (int l : ls) p *= size_[l];
      return p;
    };
    const int64_t B = prod(bt), M = prod(m), N = prod(n), K = prod(k);
    const Operand A = prepare(a, bt, m, k, abuf_);
    const Operand Bm = prepare(b, bt, k, n, bbuf_);
    // C in [bt, M, N]; written in place when that is `out`'s order.
    std::vector<int> natural = bt;
    natural.insert(natural.end(), m.begin(), m.end());
    natural.insert(natural.end(), n.begin(), n.end());
    const bool direct = natural == out;
    const int64_t csize = B * M * N;
    float* c = dst;
    if (!direct) {
      cbuf_.resize(static_cast<size_t>(std::max<int64_t>(csize, 1)));
      c = cbuf_.data();
    }
    // One GEMM per batch entry over K range [k0, k0 + kn) into c.
    auto run = [&](int64_t k0, int64_t kn, float* cc) {
      if (csize == 0) return;
      if (kn == 0) {
        std::fill(cc, cc + csize, 0.f);
        return;
      }
      const int64_t ao = k0 * (A.trans ? A.ld : 1), bo = k0 * (Bm.trans ? 1 : Bm.ld);
      auto one = [&](int64_t i) {
        gemm(A.trans, Bm.trans, M, N, kn, 1.f, A.p + i * A.batch_stride + ao, A.ld,
             Bm.p + i * Bm.batch_stride + bo, Bm.ld, 0.f, cc + i * M * N, N);
      };
      if (B >= detail::opThreads()) {
        detail::parallelFor(B, one);
      } else {
        for (int64_t i = 0; i < B; ++i) one(i);
      }
    };
    if (!ctx) {
      run(0, K, c);
    } else {
      // Each chunk's partial is added as soon as it is computed (the
      // partials of all chunks would be K / kSumChunk times the weight).
      const rank_reduction::SumChunks chunks(K);
      partial_.resize(static_cast<size_t>(std::max<int64_t>(csize, 1)));
      sum_.reset(static_cast<size_t>(csize));
      sum_.setShift(gradShift(grad_input, *ctx));
      rank_reduction::Fixed* acc = sum_.data();
      std::vector<char> bad(static_cast<size_t>(std::max(1, omp_get_max_threads())), 0);
      for (int64_t q = 0; q < chunks.count; ++q) {
        run(chunks.begin(q), chunks.end(q) - chunks.begin(q), partial_.data());
        const float* p = partial_.data();
        detail::parallelRange(csize, 4096, [&](int64_t lo, int64_t hi) {
          bool my_bad = false;
          for (int64_t j = lo; j < hi; ++j) acc[j] += sum_.convert(p[j], &my_bad);
          if (my_bad) bad[static_cast<size_t>(omp_get_thread_num())] = 1;
        });
      }
      for (char x : bad)
        if (x) sum_.setBad();
      finishSum(grad_input, sum_, *ctx, c);
    }
    if (c == dst) return;
    // Permute [bt, M, N] into `out`'s order.
    std::vector<int64_t> nst(natural.size());
    int64_t s = 1;
    for (size_t j = natural.size(); j-- > 0;) {
      nst[j] = s;
      s *= size_[natural[j]];
    }
    std::vector<Dim> dims;
    int64_t dstride = 1;
    for (size_t j = out.size(); j-- > 0;) {
      int64_t src = 0;
      for (size_t q = 0; q < natural.size(); ++q)
        if (natural[q] == out[j]) src = nst[q];
      dims.insert(dims.begin(), Dim{size_[out[j]], src, dstride});
      dstride *= size_[out[j]];
    }
    stridedSum(c, dst, dims, {});
  }

  std::string equation_;
  std::vector<Term> terms_;
  Term out_term_;
  // Per call: label sizes, ellipsis rank, output labels, input ranks.
  std::array<int64_t, kMaxLabels> size_{};
  int ell_rank_ = 0;
  std::vector<int> out_labels_;
  // Scratch, grown only.
  std::vector<float> abuf_, bbuf_, cbuf_, partial_;
  rank_reduction::FixedSum sum_;
};

}  // namespace

void registerEinsumOps(OpRegistry& r) {
  r.add("Einsum", [](const Attrs& a) { return std::make_unique<EinsumOp>(a); });
}

}  // namespace slim::ops
