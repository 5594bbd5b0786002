// Gemm (Y = alpha*op(A)*op(B) + beta*C, C unidirectionally broadcast) and
// MatMul (numpy semantics: 1-D promotion, broadcast batch dimensions), both
// on the GEMM of conv_kernels. MatMul folds the batch into the rows when
// B has no batch dimensions (x[B,T,K] @ w[K,N]: one large GEMM). A weight
// B's gradient is a reduction over the samples; where the executor asks for
// it (Op::reducesGradOverRanks) both add float partials in fixed point
// (exact_sum.h): one per group of kSumChunk samples when the executor says
// where A's samples lie (sample_groups.h), else one per kSumChunk rows.
#include <algorithm>
#include <cstring>
#include <vector>

#include "trainer/ops/broadcast.h"
#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/op.h"
#include "trainer/ops/parallel.h"

namespace slim::ops {
namespace {

using detail::gemm;

// Scratch of the weight gradients: the float partials and a group's
// gathered rows. Ops run backward one at a time and use it only inside, so
// one buffer serves every Gemm/MatMul instead of one per op.
struct GradScratch {
  std::vector<float> partials, rows;
};
GradScratch& gradScratch() {
  thread_local GradScratch s;
  return s;
}

// The partials of a weight's gradient over A (rows x k) and dY (rows x n),
// both row-major: per sample group g of `groups`, alpha * A_g^T dY_g [k, n],
// or its transpose alpha * dY_g^T A_g [n, k] when `transposed`, at
// part + g * k * n. A group whose rows are not one block is gathered first
// (its runs in order), so every group is one GEMM over all its rows.
float* groupPartials(const rank_reduction::SampleGroups& groups, int64_t k, int64_t n, float alpha,
                     bool transposed, const float* a, const float* dy) {
  GradScratch& s = gradScratch();
  const int64_t size = k * n;
  if (s.partials.size() < static_cast<size_t>(groups.count * size))
    s.partials.resize(static_cast<size_t>(groups.count * size));
  for (int64_t g = 0; g < groups.count; ++g) {
    const int64_t rows = groups.rows(g);
    const float* ag = a + groups.runStart(g, 0) * k;
    const float* dg = dy + groups.runStart(g, 0) * n;
    if (!groups.contiguous(g)) {
      if (s.rows.size() < static_cast<size_t>(rows * (k + n)))
        s.rows.resize(static_cast<size_t>(rows * (k + n)));
      float* ga = s.rows.data();
      float* gd = ga + rows * k;
      const int64_t run = groups.runRows(g);
      detail::parallelRange(groups.outer, 1, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          const int64_t r0 = groups.runStart(g, o);
          std::memcpy(ga + o * run * k, a + r0 * k, static_cast<size_t>(run * k) * sizeof(float));
          std::memcpy(gd + o * run * n, dy + r0 * n, static_cast<size_t>(run * n) * sizeof(float));
        }
      });
      ag = ga;
      dg = gd;
    }
    float* p = s.partials.data() + g * size;
    if (!transposed)
      gemm(true, false, k, n, rows, alpha, ag, k, dg, n, 0.f, p, n);
    else
      gemm(true, false, n, k, rows, alpha, dg, n, ag, k, 0.f, p, k);
  }
  return s.partials.data();
}

class GemmOp : public Op {
 public:
  explicit GemmOp(const Attrs& a)
      : alpha_(a.getFloat("alpha", 1.f)), beta_(a.getFloat("beta", 1.f)),
        ta_(a.getInt("transA", 0) != 0), tb_(a.getInt("transB", 0) != 0) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    Tensor& y = *out[0];
    y.resize({M_, N_});
    // y: (M, N); A: (M, K) or (K, M); B: (K, N) or (N, K)
    float beta = 0.f;
    if (c_ && beta_ != 0.f) {
      const float* c = c_->f32();
      float* yp = y.f32();
      for (int64_t i = 0; i < M_; ++i)
        for (int64_t j = 0; j < N_; ++j)
          yp[i * N_ + j] = c[(cM_ == 1 ? 0 : i) * cN_ + (cN_ == 1 ? 0 : j)];
      beta = beta_;
    }
    gemm(ta_, tb_, M_, N_, K_, alpha_, in[0]->f32(), lda(), in[1]->f32(), ldb(), beta,
         y.f32(), N_);
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    Tensor* da = din.size() > 0 ? din[0] : nullptr;
    Tensor* db = din.size() > 1 ? din[1] : nullptr;
    Tensor* dc = din.size() > 2 && c_ ? din[2] : nullptr;
    if (da) da->resize(in[0]->shape());
    if (db) db->resize(in[1]->shape());
    if (dc) dc->resize(c_->shape());
    if (!dout[0]) {
      for (Tensor* t : {da, db, dc}) if (t) t->zero();
      return;
    }
    const float* dy = dout[0]->f32();  // (M, N)
    const float* a = in[0]->f32();
    const float* b = in[1]->f32();
    if (da) {
      if (!ta_)  // dA (M, K) = alpha * dY * op(B)^T
        gemm(false, !tb_, M_, K_, N_, alpha_, dy, N_, b, ldb(), 0.f, da->f32(), K_);
      else       // dA (K, M) = alpha * op(B) * dY^T
        gemm(tb_, true, K_, M_, N_, alpha_, b, ldb(), dy, N_, 0.f, da->f32(), M_);
    }
    if (db) {
      // dB (K, N) = alpha * op(A)^T * dY, or (N, K) = alpha * dY^T * op(A)
      // when transB: a float partial per sample group (or chunk of kSumChunk
      // rows of op(A)), summed in fixed point (world-size invariant).
      const int64_t bsize = K_ * N_;
      const rank_reduction::SampleLayout l = inputSamples(0);
      if (!ta_ && rank_reduction::SampleGroups::fits(l, K_, M_)) {
        const rank_reduction::SampleGroups groups(l, K_);
        finishPartials(1, groupPartials(groups, K_, N_, alpha_, tb_, a, dy), groups.count, bsize,
                       bsum_, ctx, db->f32());
      } else {
        const rank_reduction::SumChunks chunks(M_);
        std::vector<float>& partials = gradScratch().partials;
        if (partials.size() < static_cast<size_t>(chunks.count * bsize))
          partials.resize(static_cast<size_t>(chunks.count * bsize));
        for (int64_t c = 0; c < chunks.count; ++c) {
          const int64_t r0 = chunks.begin(c), rows = chunks.end(c) - r0;
          const float* as = ta_ ? a + r0 : a + r0 * lda();
          float* part = partials.data() + c * bsize;
          if (!tb_)
            gemm(!ta_, false, K_, N_, rows, alpha_, as, lda(), dy + r0 * N_, N_, 0.f, part, N_);
          else
            gemm(true, ta_, N_, K_, rows, alpha_, dy + r0 * N_, N_, as, lda(), 0.f, part, K_);
        }
        finishPartials(1, partials.data(), chunks.count, bsize, bsum_, ctx, db->f32());
      }
    }
    if (dc && cM_ == 1 && cN_ == N_ && !ta_ &&
        rank_reduction::SampleGroups::fits(inputSamples(0), K_, M_)) {
      // A bias: beta * dY's column sums by groups of samples (groupColumnSums).
      const rank_reduction::SampleGroups groups(inputSamples(0), K_);
      std::vector<float>& partials = gradScratch().partials;
      partials.resize(static_cast<size_t>(groups.count * N_));
      groupColumnSums(groups, N_, partials.data(),
                      [&](int64_t r, int64_t j) { return beta_ * dy[r * N_ + j]; });
      finishPartials(2, partials.data(), groups.count, N_, csum_, ctx, dc->f32());
    } else if (dc) {  // dC = beta * dY summed over C's broadcast dimensions
      rank_reduction::FixedSum sum;
      sum.reset(static_cast<size_t>(dc->numel()));
      sum.setShift(gradShift(2, ctx));
      for (int64_t i = 0; i < M_; ++i)
        for (int64_t j = 0; j < N_; ++j)
          sum.add(static_cast<size_t>((cM_ == 1 ? 0 : i) * cN_ + (cN_ == 1 ? 0 : j)),
                  beta_ * dy[i * N_ + j]);
      finishSum(2, sum, ctx, dc->f32());
    }
  }

  bool reducesGradOverRanks(int i) const override { return i == 1 || i == 2; }

  // Backward reads A and B, never C or Y.
  bool backwardReadsInput(size_t i, const std::vector<bool>&) const override { return i < 2; }
  bool backwardReadsOutput(size_t) const override { return false; }

 private:
  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs A and B");
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (a.ndim() != 2 || b.ndim() != 2)
      SLIM_THROW(ShapeError, label, ": A and B must be 2-D, got ", shapeStr(a.shape()),
                 " and ", shapeStr(b.shape()));
    M_ = ta_ ? a.dim(1) : a.dim(0);
    K_ = ta_ ? a.dim(0) : a.dim(1);
    N_ = tb_ ? b.dim(0) : b.dim(1);
    const int64_t kb = tb_ ? b.dim(1) : b.dim(0);
    if (kb != K_)
      SLIM_THROW(ShapeError, label, ": inner dimensions differ: A ", shapeStr(a.shape()),
                 " (transA=", ta_, "), B ", shapeStr(b.shape()), " (transB=", tb_, ")");
    c_ = in.size() > 2 ? in[2] : nullptr;
    if (!c_) return;
    const Shape& cs = c_->shape();
    cM_ = cs.size() == 2 ? cs[0] : 1;
    cN_ = cs.empty() ? 1 : cs.back();
    if (cs.size() > 2 || (cM_ != 1 && cM_ != M_) || (cN_ != 1 && cN_ != N_))
      SLIM_THROW(ShapeError, label, ": C ", shapeStr(cs), " does not broadcast to [", M_,
                 ", ", N_, "]");
  }
  int64_t lda() const { return ta_ ? M_ : K_; }
  int64_t ldb() const { return tb_ ? K_ : N_; }

  float alpha_, beta_;
  bool ta_, tb_;
  int64_t M_ = 0, N_ = 0, K_ = 0, cM_ = 1, cN_ = 1;
  rank_reduction::FixedSum bsum_, csum_;
  const Tensor* c_ = nullptr;
};

class MatMulOp : public Op {
 public:
  explicit MatMulOp(const Attrs&) {}

  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               RunContext&) override {
    setup(in);
    Tensor& y = *out[0];
    y.resize(out_shape_);
    const float* a = in[0]->f32();
    const float* b = in[1]->f32();
    const int64_t last = out_shape_.empty() ? 1 : out_shape_.back();
    if (bias_)
      SLIM_ENFORCE(bias_->numel() == last || bias_->numel() == 1, label, ": bias ",
                   shapeStr(bias_->shape()), " does not broadcast to ", shapeStr(out_shape_));
    if (fold_) {  // A (batch*M, K) * B (K, N)
      if (bias_ && bias_->numel() == N_ && last == N_ && K_ > 0)  // beta's C: the bias row
        return gemm(false, false, batch_ * M_, N_, K_, 1.f, a, K_, b, N_, 1.f, y.f32(), N_,
                    bias_->f32(), 0);
      gemm(false, false, batch_ * M_, N_, K_, 1.f, a, K_, b, N_, 0.f, y.f32(), N_);
    } else {
      forEntries(true, [&](int64_t i) {
        gemm(false, false, M_, N_, K_, 1.f, a + a_off_[i], K_, b + b_off_[i], N_, 0.f,
             y.f32() + i * M_ * N_, N_);
      });
    }
    if (!bias_) return;
    // The fused bias where the kernel cannot add it: the Add's y + bias.
    const float* bp = bias_->f32();
    const int64_t nb = bias_->numel();
    float* yp = y.f32();
    detail::parallelRange(y.numel(), detail::kGrainCheap, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) yp[i] = yp[i] + bp[nb == 1 ? 0 : i % last];
    });
  }

  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                RunContext& ctx) override {
    setup(in);
    Tensor* da = din.size() > 0 ? din[0] : nullptr;
    Tensor* db = din.size() > 1 ? din[1] : nullptr;
    if (da) da->resize(in[0]->shape());
    if (db) db->resize(in[1]->shape());
    // Zeros where nothing flows in, and for the per-entry products, which
    // accumulate (beta 1); the folded product and the exact weight gradient
    // write every element.
    for (Tensor* d : {da, db})
      if (d && (!dout[0] || !fold_)) d->zero();
    if (!dout[0]) return;
    const float* dy = dout[0]->f32();
    const float* a = in[0]->f32();
    const float* b = in[1]->f32();
    if (db && rankReduced(1)) {  // B is a weight: exact, world-size invariant
      weightGradient(a, dy, ctx, db->f32());
      db = nullptr;
    }
    if (fold_) {
      if (da)  // dA (batch*M, K) = dY * B^T
        gemm(false, true, batch_ * M_, K_, N_, 1.f, dy, N_, b, N_, 0.f, da->f32(), K_);
      if (db)  // dB (K, N) = A^T * dY
        gemm(true, false, K_, N_, batch_ * M_, 1.f, a, K_, dy, N_, 0.f, db->f32(), N_);
      return;
    }
    // Broadcast batch entries accumulate (beta = 1 on zeroed gradients), in
    // entry order: the entries run in parallel only when none shares a
    // gradient with another.
    forEntries((!da || a_distinct_) && (!db || b_distinct_), [&](int64_t i) {
      const float* dyi = dy + i * M_ * N_;
      if (da)
        gemm(false, true, M_, K_, N_, 1.f, dyi, N_, b + b_off_[i], N_, 1.f,
             da->f32() + a_off_[i], K_);
      if (db)
        gemm(true, false, K_, N_, M_, 1.f, a + a_off_[i], K_, dyi, N_, 1.f,
             db->f32() + b_off_[i], N_);
    });
  }

  bool reducesGradOverRanks(int i) const override { return i == 1; }

  bool backwardReadsOutput(size_t) const override { return false; }
  bool fuseOutputBias(const Tensor* bias) override {
    bias_ = bias;
    return true;
  }

 private:
  // dB of a weight B, world-size invariant: float partials A^T dY added in
  // fixed point. Where the executor says where A's samples lie (B one
  // matrix), one partial per group of kSumChunk samples over all their rows
  // (sample_groups.h). Otherwise one per chunk of kSumChunk consecutive rows
  // of each output batch entry: with a per-rank batch that is a multiple of
  // kSumChunk, every rank's rows start on a chunk boundary of the whole
  // batch's, whichever dimension holds the samples ([N, T, K], or
  // batch_first attention's projections on [T, N, K]), so the chunks, their
  // partials and the sums are those of one rank with the whole batch; but a
  // sequence of T tokens costs T / kSumChunk partials per sample.
  void weightGradient(const float* a, const float* dy, RunContext& ctx, float* db) {
    const rank_reduction::SampleLayout l = inputSamples(0);
    if (fold_ && rank_reduction::SampleGroups::fits(l, K_, batch_ * M_)) {
      const rank_reduction::SampleGroups groups(l, K_);
      finishPartials(1, groupPartials(groups, K_, N_, 1.f, false, a, dy), groups.count, K_ * N_,
                     bsum_, ctx, db);
      return;
    }
    const int64_t entries = fold_ ? 1 : batch_;  // output batch entries
    const int64_t rows = fold_ ? batch_ * M_ : M_;  // rows of each entry
    const int64_t bsize = K_ * N_;
    bsum_.reset(static_cast<size_t>(numelOf(b_shape_)));
    bsum_.setShift(gradShift(1, ctx));
    part_.resize(static_cast<size_t>(bsize));
    std::vector<char> bad(static_cast<size_t>(std::max(1, omp_get_max_threads())), 0);
    const rank_reduction::SumChunks chunks(rows);
    for (int64_t i = 0; i < entries; ++i) {
      const float* ai = a + (fold_ ? 0 : a_off_[i]);
      const float* dyi = dy + i * rows * N_;
      rank_reduction::Fixed* si = bsum_.data() + (fold_ ? 0 : b_off_[i]);
      for (int64_t c = 0; c < chunks.count; ++c) {
        const int64_t r0 = chunks.begin(c), n = chunks.end(c) - r0;
        gemm(true, false, K_, N_, n, 1.f, ai + r0 * K_, K_, dyi + r0 * N_, N_, 0.f,
             part_.data(), N_);
        detail::parallelRange(bsize, 4096, [&](int64_t b, int64_t e) {
          bool my_bad = false;
          const float* pk = part_.data();
          for (int64_t k = b; k < e; ++k) si[k] += bsum_.convert(pk[k], &my_bad);
          if (my_bad) bad[static_cast<size_t>(omp_get_thread_num())] = 1;
        });
      }
    }
    for (char x : bad)
      if (x) bsum_.setBad();
    finishSum(1, bsum_, ctx, db);
  }

  // f(i) for every output batch entry i: over the threads, one GEMM each,
  // when `independent` and there are at least as many entries as threads;
  // else in order, each GEMM over the threads. A GEMM's bits do not depend
  // on its threads, so both give the same bits.
  template <class F>
  void forEntries(bool independent, F&& f) const {
    if (independent && batch_ >= detail::opThreads()) {
      detail::parallelFor(batch_, f);
      return;
    }
    for (int64_t i = 0; i < batch_; ++i) f(i);
  }

  void setup(const std::vector<Tensor*>& in) {
    SLIM_ENFORCE(in.size() >= 2 && in[0] && in[1], label, ": needs inputs A and B");
    const Shape& as = in[0]->shape();
    const Shape& bs = in[1]->shape();
    if (as.empty() || bs.empty())
      SLIM_THROW(ShapeError, label, ": scalar operands are not allowed, got ", shapeStr(as),
                 " and ", shapeStr(bs));
    // Matrix views: a 1-D A is [1, K], a 1-D B is [K, 1].
    M_ = as.size() == 1 ? 1 : as[as.size() - 2];
    K_ = as.back();
    const int64_t kb = bs.size() == 1 ? bs[0] : bs[bs.size() - 2];
    N_ = bs.size() == 1 ? 1 : bs.back();
    if (kb != K_)
      SLIM_THROW(ShapeError, label, ": inner dimensions differ: ", shapeStr(as), " @ ",
                 shapeStr(bs));
    Shape ab(as.begin(), as.end() - std::min<size_t>(as.size(), 2));
    Shape bb(bs.begin(), bs.end() - std::min<size_t>(bs.size(), 2));
    const size_t r = std::max(ab.size(), bb.size());
    ab.insert(ab.begin(), r - ab.size(), 1);
    bb.insert(bb.begin(), r - bb.size(), 1);
    Shape ob(r);
    for (size_t d = 0; d < r; ++d) {
      if (ab[d] != bb[d] && ab[d] != 1 && bb[d] != 1)
        SLIM_THROW(ShapeError, label, ": batch dimensions do not broadcast: ", shapeStr(as),
                   " @ ", shapeStr(bs));
      ob[d] = ab[d] == 1 ? bb[d] : ab[d];
    }
    out_shape_ = ob;
    b_shape_ = bs;
    if (as.size() > 1) out_shape_.push_back(M_);
    if (bs.size() > 1) out_shape_.push_back(N_);
    batch_ = numelOf(ob);
    fold_ = numelOf(bb) == 1 && numelOf(ab) == batch_;
    if (fold_) return;
    a_distinct_ = numelOf(ab) == batch_;  // no entry shares A's block (or its gradient)
    b_distinct_ = numelOf(bb) == batch_;
    // Element offsets of each output batch entry in A and B.
    a_off_.assign(batch_, 0);
    b_off_.assign(batch_, 0);
    int64_t sa = M_ * K_, sb = K_ * N_;
    for (size_t d = r; d-- > 0;) {
      int64_t inner = 1;
      for (size_t e = d + 1; e < r; ++e) inner *= ob[e];
      for (int64_t i = 0; i < batch_; ++i) {
        const int64_t idx = (i / inner) % ob[d];
        if (ab[d] != 1) a_off_[i] += idx * sa;
        if (bb[d] != 1) b_off_[i] += idx * sb;
      }
      sa *= ab[d];
      sb *= bb[d];
    }
  }

  int64_t M_ = 0, N_ = 0, K_ = 0, batch_ = 1;
  bool fold_ = false, a_distinct_ = false, b_distinct_ = false;
  const Tensor* bias_ = nullptr;  // fuseOutputBias
  Shape out_shape_, b_shape_;
  std::vector<int64_t> a_off_, b_off_;
  std::vector<float> part_;  // weightGradient's partial of one chunk
  rank_reduction::FixedSum bsum_;  // weightGradient's sums
};

}  // namespace

void registerGemmOps(OpRegistry& r) {
  r.add("Gemm", [](const Attrs& a) { return std::make_unique<GemmOp>(a); });
  r.add("MatMul", [](const Attrs& a) { return std::make_unique<MatMulOp>(a); });
}

}  // namespace slim::ops
