// Pact: learnable symmetric clipping y = clip(x, -alpha, alpha) before the
// activation quantizer (act-reference §4.6). Identity at inference, as ACT's
// eval/export program has no PACT.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/ops/parallel.h"
#include "trainer/rank_reduction/exact_sum.h"

namespace slim::compress {
namespace {

// Backward's codes of x, one byte per element, written by the training
// forward so that backward needs no copy of x: bit 0 x > a, bit 1 x < -a
// (alpha's gradient), bit 2 the fused Relu/Clip blocks the gradient (its
// backward on x). dx passes where the code is 0 (NaN: inside, as in the
// comparisons on x).
constexpr uint8_t kAbove = 1, kBelow = 2, kActBlocks = 4;
void codeBlock(const float* __restrict x, uint8_t* __restrict c, int64_t n, float a,
               const ops::ActEpilogue& act) {
  if (act.kind == ops::ActEpilogue::Kind::kRelu) {
    for (int64_t i = 0; i < n; ++i)
      c[i] = static_cast<uint8_t>((x[i] > a) | ((x[i] < -a) << 1) | (!(x[i] > 0.f) << 2));
  } else if (act.kind == ops::ActEpilogue::Kind::kClip) {
    const float lo = act.lo, hi = act.hi;
    for (int64_t i = 0; i < n; ++i)
      c[i] =
          static_cast<uint8_t>((x[i] > a) | ((x[i] < -a) << 1) | (!(x[i] > lo && x[i] < hi) << 2));
  } else {
    for (int64_t i = 0; i < n; ++i) c[i] = static_cast<uint8_t>((x[i] > a) | ((x[i] < -a) << 1));
  }
}

// dx = g where the code is 0, else 0; returns whether any code says clipped.
int maskCodes(const uint8_t* __restrict c, const float* __restrict g, float* __restrict dx,
              int64_t n) {
  int outside = 0;
  for (int64_t i = 0; i < n; ++i) {
    dx[i] = c[i] ? 0.f : g[i];
    outside |= c[i] & (kAbove | kBelow);
  }
  return outside;
}

int anyOutside(const float* __restrict x, int64_t n, float a) {
  int outside = 0;
  for (int64_t i = 0; i < n; ++i) outside |= (x[i] > a) | (x[i] < -a);
  return outside;
}

// One thread's view of the clipped values clip(x, -a, a): their abs-max,
// whether one was NaN, whether any x was outside [-a, a]. Maxima and ORs do
// not depend on the order, so any split (blocks, rows, threads) agrees.
struct ClipStats {
  float max = 0.f;
  bool nan = false, outside = false;

  // Adds x[0, n); the clipped values go to y when given (else to a block on
  // the stack, in cache for the abs-max).
  void add(const float* x, int64_t n, float a, float* y) {
    float block[4096];
    for (int64_t b0 = 0; b0 < n; b0 += 4096) {
      const int64_t len = std::min<int64_t>(4096, n - b0);
      float* yb = y ? y + b0 : block;
      for (int64_t i = 0; i < len; ++i) yb[i] = std::min(a, std::max(-a, x[b0 + i]));
      const float mb = absMaxBlock(yb, len, &nan);
      max = mb > max ? mb : max;
      outside = outside || anyOutside(x + b0, len, a);
    }
  }
  // add(x, n, a, nullptr) and codeBlock(x, codes, n, a, act) in one pass
  // over x instead of three (a producer's row visit, or the forward's own
  // pass where the reader clips): the same codes,
  // and the same abs-max as a float whenever no value is NaN (the integer
  // maximum of |clip(x)|'s bits, as absMaxBlock; a NaN sets `nan`, and the
  // combined maximum is NaN whatever `max` holds).
  void addCoded(const float* __restrict x, int64_t n, float a, uint8_t* __restrict c,
                const ops::ActEpilogue& act) {
    int32_t r = 0;
    int side = 0;
    auto run = [&](auto blocks) {
      for (int64_t i = 0; i < n; ++i) {
        const float y = std::min(a, std::max(-a, x[i]));
        const int32_t bits = std::bit_cast<int32_t>(y) & 0x7fffffff;
        r = bits > r ? bits : r;
        const int code = (x[i] > a) | ((x[i] < -a) << 1);
        side |= code;
        c[i] = static_cast<uint8_t>(code | (blocks(x[i]) << 2));
      }
    };
    if (act.kind == ops::ActEpilogue::Kind::kRelu) {
      run([](float v) { return static_cast<int>(!(v > 0.f)); });
    } else if (act.kind == ops::ActEpilogue::Kind::kClip) {
      const float lo = act.lo, hi = act.hi;
      run([lo, hi](float v) { return static_cast<int>(!(v > lo && v < hi)); });
    } else {
      run([](float) { return 0; });
    }
    if (r > 0x7f800000) nan = true;
    const float m = std::bit_cast<float>(r);
    max = m > max ? m : max;
    outside = outside || side != 0;
  }
  // The threads' stats combined: the abs-max (NaN if any was) and outside.
  static float combine(const std::vector<ClipStats>& parts, bool* outside) {
    float m = 0.f;
    bool nan = false;
    *outside = false;
    for (const ClipStats& p : parts) {
      m = p.max > m ? p.max : m;
      nan = nan || p.nan;
      *outside = *outside || p.outside;
    }
    return nan ? std::nanf("") : m;
  }
};

class PactOp : public ops::Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext& ctx) override {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs x and alpha");
    SLIM_ENFORCE(in[1]->numel() == 1 && in[1]->dtype() == DType::kF32, label,
                 ": alpha must be one float32 value, got ", shapeStr(in[1]->shape()));
    const Tensor& x = *in[0];
    clipped_ = ctx.training;
    outside_ = true;
    if (abs_max_) abs_max_->valid = false;
    if (clip_) clip_->valid = false;
    if (clip_) {  // the reader clips: y shares x, the abs-max from a scratch block
      *out[0] = x;
    } else {
      out[0]->resize(x.shape());
    }
    if (!clipped_) {
      if (!clip_) out[0]->copyFrom(x);
      return;
    }
    const float a = in[1]->f32()[0];
    const float* xp = x.f32();
    codes_.resize(static_cast<size_t>(x.numel()));
    code_act_ = dx_mask_;
    uint8_t* codes = codes_.data();
    if (clip_) {
      SLIM_ENFORCE(abs_max_, label, ": a clip left to the reader needs the abs-max link");
      clip_->bound = a;
      clip_->valid = true;
      if (rows_ && rows_->valid) {  // the producer visited every row (linkRowVisits)
        rows_->valid = false;
        abs_max_->value = ClipStats::combine(row_stats_, &outside_);
        abs_max_->valid = true;
        // The visits wrote the codes too when every row lay in x's storage
        // as it is now, with this alpha.
        int64_t coded = 0;
        for (int64_t c : row_coded_) coded += c;
        if (coded == x.numel() && code_base_ == xp && row_alpha_ == a) return;
        ops::detail::parallelRange(x.numel(), 16384, [&](int64_t b, int64_t e) {
          codeBlock(xp + b, codes + b, e - b, a, dx_mask_);
        });
        return;
      }
    }
    float* yp = clip_ ? nullptr : out[0]->f32();
    const size_t nt = static_cast<size_t>(std::max(1, ops::detail::opThreads()));
    if (!abs_max_) {
      std::vector<char> outside(nt, 0);
      ops::detail::parallelRange(x.numel(), 16384, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) yp[i] = std::min(a, std::max(-a, xp[i]));
        outside[static_cast<size_t>(omp_get_thread_num())] = anyOutside(xp + b, e - b, a);
        codeBlock(xp + b, codes + b, e - b, a, dx_mask_);
      });
      outside_ = std::find(outside.begin(), outside.end(), 1) != outside.end();
      return;
    }
    // The reader's abs-max, block by block while the block is in cache (the
    // same value as absMax(y)).
    std::vector<ClipStats> parts(nt);
    ops::detail::parallelRange(x.numel(), 16384, [&](int64_t b, int64_t e) {
      ClipStats& part = parts[static_cast<size_t>(omp_get_thread_num())];
      if (yp) {
        part.add(xp + b, e - b, a, yp + b);
        codeBlock(xp + b, codes + b, e - b, a, dx_mask_);
      } else {
        part.addCoded(xp + b, e - b, a, codes + b, dx_mask_);
      }
    });
    abs_max_->value = ClipStats::combine(parts, &outside_);
    abs_max_->valid = true;
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext& ctx) override {
    const Tensor& x = *in[0];
    Tensor* dx = din.size() > 0 ? din[0] : nullptr;
    Tensor* da = din.size() > 1 ? din[1] : nullptr;
    if (dx) dx->resize(x.shape());
    if (da) da->resize(in[1]->shape());
    if (!dout[0]) {
      if (dx) dx->zero();
      if (da) da->zero();
      return;
    }
    const float* g = dout[0]->f32();
    // x: (n); dx = g inside [-a, a]; da = sum(g | x > a) - sum(g | x < -a),
    // each element converted to fixed point and added as integers
    // (exact_sum.h): the same bits for any split over threads or ranks.
    const float* xp = x.defined() ? x.f32() : nullptr;
    float* dxp = dx ? dx->f32() : nullptr;
    const int64_t n = x.numel();
    const bool clipped = clipped_;
    // A training forward left codes (x may be shape-only, Op::backwardReadsInput);
    // after another forward x itself is read.
    const uint8_t* codes = codes_.data();
    if (clipped)
      SLIM_ENFORCE(static_cast<int64_t>(codes_.size()) == n && code_act_.kind == dx_mask_.kind &&
                       code_act_.lo == dx_mask_.lo && code_act_.hi == dx_mask_.hi,
                   label, ": backward without its training forward");
    else
      SLIM_ENFORCE(xp || (!dxp && !da) || dx_mask_.kind == ops::ActEpilogue::Kind::kNone, label,
                   ": backward after an inference forward needs x");
    const int nt = std::max(1, ops::detail::opThreads());
    const int shift = gradShift(1, ctx);  // FixedSum::setShift, below
    std::vector<rank_reduction::Fixed> part(static_cast<size_t>(nt), 0);
    std::vector<char> bad(static_cast<size_t>(nt), 0);
    ops::detail::parallelRange(n, 16384, [&](int64_t b, int64_t e) {
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      rank_reduction::Fixed acc = 0;
      bool my_bad = false;
      // Blocks of 1024: a branch-free (vectorised) pass writes dx and notes
      // whether anything was clipped; only such blocks are scanned for da.
      for (int64_t b0 = b; b0 < e; b0 += 1024) {
        const int64_t e0 = std::min(e, b0 + 1024);
        int outside = 0;
        if (!clipped) {
          if (dxp) std::copy(g + b0, g + e0, dxp + b0);
          if (dxp) dx_mask_.maskGrad(xp + b0, dxp + b0, e0 - b0);
          continue;
        }
        if (dxp) {
          outside = maskCodes(codes + b0, g + b0, dxp + b0, e0 - b0);
        } else {
          for (int64_t i = b0; i < e0; ++i) outside |= codes[i] & (kAbove | kBelow);
        }
        if (!outside || !da) continue;
        for (int64_t i = b0; i < e0; ++i) {
          if (codes[i] & kAbove)
            acc += rank_reduction::detail::toFixed(g[i], &my_bad, shift);
          else if (codes[i] & kBelow)
            acc += rank_reduction::detail::toFixed(-g[i], &my_bad, shift);
        }
      }
      part[t] += acc;
      bad[t] = bad[t] || my_bad;
    });
    rank_reduction::FixedSum dalpha;
    dalpha.reset(1);
    dalpha.setShift(shift);
    for (size_t t = 0; t < part.size(); ++t) {
      dalpha.data()[0] += part[t];
      if (bad[t]) dalpha.setBad();
    }
    if (da) finishSum(1, dalpha, ctx, da->f32());
  }

  bool reducesGradOverRanks(int i) const override { return i == 1; }
  // After a training forward backward reads the codes, not x.
  bool backwardReadsInput(size_t i, const std::vector<bool>&) const override { return i == 1; }
  bool backwardReadsOutput(size_t) const override { return false; }
  // Nothing clipped (or not in training mode): alpha's gradient is 0 and g
  // matters only for x's gradient. With sync and alpha reduced over ranks,
  // another rank may have clipped: every rank then computes it.
  bool outputGradientUnused(const std::vector<bool>& need, bool synced) const override {
    if (need.empty() || need[0] || (synced && rankReduced(1))) return false;
    return !clipped_ || !outside_;
  }
  // x is the output of a Relu/Clip the executor lets this op differentiate.
  bool maskInputGradient(const ops::ActEpilogue& e) override {
    dx_mask_ = e;
    return true;
  }
  bool publishOutputAbsMax(ops::AbsMaxLink* link) override {
    abs_max_ = link;
    return true;
  }
  // With the clip left to the reader, the forward's only pass over x (the
  // clipped values' abs-max, whether any was clipped) runs row by row in
  // the producer, per thread: the same maximum and flag in any order.
  bool readInputRowVisits(ops::RowVisitLink* link, const std::vector<const Tensor*>& in) override {
    if (link && (!clip_ || !abs_max_ || in.size() < 2 || !in[1])) return false;
    rows_ = link;
    if (!link) return true;
    const Tensor* alpha = in[1];
    const Tensor* x = in[0];
    // The codes of the rows that lie in x's storage are written as the
    // rows are visited (the forward then skips its pass over x); elements
    // and their codes correspond one to one, so any row order and thread
    // split gives the same codes.
    link->begin = [this, alpha, x] {
      const size_t nt = static_cast<size_t>(std::max(1, ops::detail::opThreads()));
      row_stats_.assign(nt, {});
      row_coded_.assign(nt, 0);
      row_alpha_ = alpha->f32()[0];
      code_base_ = nullptr;
      if (x && x->defined() && x->dtype() == DType::kF32 && x->numel() > 0) {
        code_base_ = x->f32();
        code_n_ = x->numel();
        codes_.resize(static_cast<size_t>(code_n_));
        code_act_ = dx_mask_;
      }
    };
    link->visit = [this](const float* row, int64_t n) {
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const auto r = reinterpret_cast<uintptr_t>(row), b = reinterpret_cast<uintptr_t>(code_base_);
      if (code_base_ && r >= b &&
          (r - b) / sizeof(float) + static_cast<uint64_t>(n) <= static_cast<uint64_t>(code_n_)) {
        row_stats_[t].addCoded(row, n, row_alpha_, codes_.data() + (row - code_base_), dx_mask_);
        row_coded_[t] += n;
      } else {
        row_stats_[t].add(row, n, row_alpha_, nullptr);
      }
    };
    return true;
  }
  bool handOutputClip(ops::ClipLink* link) override {
    if (link && !abs_max_) return false;
    clip_ = link;
    return true;
  }

 private:
  bool clipped_ = true;  // mode of the last forward, so backward matches it
  bool outside_ = true;  // its training forward clipped some element
  ops::ActEpilogue dx_mask_;  // fused Relu/Clip backward on dx (executor)
  ops::AbsMaxLink* abs_max_ = nullptr;  // max |y| for the reader (executor)
  ops::ClipLink* clip_ = nullptr;  // the clip, left to the reader (executor)
  ops::RowVisitLink* rows_ = nullptr;  // x's rows, visited by its producer (executor)
  std::vector<ClipStats> row_stats_;   // per thread, over the visited rows
  std::vector<int64_t> row_coded_;     // per thread, elements whose codes the visits wrote
  const float* code_base_ = nullptr;   // x's storage when the visits began
  int64_t code_n_ = 0;                 // its size then
  float row_alpha_ = 0.f;              // alpha then
  std::vector<uint8_t> codes_;         // backward's codes of x (codeBlock)
  ops::ActEpilogue code_act_;          // the dx_mask_ they were written with
};

}  // namespace

namespace detail {
void registerPactOp(ops::OpRegistry& r) {
  r.addInternal(kPactOp, [](const ops::Attrs&) { return std::make_unique<PactOp>(); });
}
}  // namespace detail

}  // namespace slim::compress
