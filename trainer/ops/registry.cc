// The op registry. Built-in families register explicitly (no static
// initialisers: they would be dropped when linking a static library).
#include <algorithm>
#include <bit>
#include <cmath>
#include <mutex>

#include "trainer/ops/op.h"

namespace slim::ops {

void Op::backward(const std::vector<Tensor*>&, const std::vector<Tensor*>&,
                  const std::vector<const Tensor*>&, const std::vector<Tensor*>&,
                  RunContext&) {
  SLIM_THROW(Error, label, ": backward is not implemented");
}

void Op::finishSum(size_t i, rank_reduction::FixedSum& sum, RunContext& ctx, float* out) const {
  const size_t n = sum.size();
  double world = 1;
  if (ctx.sync && rankReduced(i)) {
    rank_reduction::sumOverRanks(*ctx.sync, sum);
    world = ctx.sync->size();
  }
  // A shifted sum (partials converted as partial / world) is the mean over
  // ranks already: dividing again would be wrong, dividing by 1 is a no-op.
  SLIM_ENFORCE(sum.shift() == 0 || std::ldexp(1.0, sum.shift()) == world, label,
               ": a gradient sum shifted by ", sum.shift(), " over ", world, " rank(s)");
  if (sum.shift() != 0) world = 1;
  detail::parallelRange(static_cast<int64_t>(n), 16384, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      out[k] = static_cast<float>(sum.value(static_cast<size_t>(k)) / world);
  });
}

namespace {

constexpr int64_t kExactBlock = 256;

// out[i] = sum over c < count of p[c * stride + i], added in double, for the
// elements where that sum is exact and so equals the fixed-point one
// (exact[i]): every nonzero partial is a normal float in [2^-41, 2^46) (so
// toFixed is exact and not bad) and their binary exponents span at most
// 53 - 24 - ceil(log2(count)) binades (so every partial sum fits a double's
// 53 bits). The fixed-point sum then converts to that same double. A zero
// total is +0, as fromFixed gives it. Branch-free: vectorised over i.
void sumInDouble(const float* p, int64_t stride, int64_t count, int64_t len, float* out,
                 bool* exact) {
  const int span = 53 - 24 - std::bit_width(static_cast<uint64_t>(count - 1));
  double s[kExactBlock];
  int32_t lo[kExactBlock], hi[kExactBlock];
  for (int64_t i = 0; i < len; ++i) {
    s[i] = 0.0;
    lo[i] = 255;
    hi[i] = 0;
  }
  for (int64_t c = 0; c < count; ++c) {
    const float* pc = p + c * stride;
    for (int64_t i = 0; i < len; ++i) {
      const uint32_t bits = std::bit_cast<uint32_t>(pc[i]);
      const int32_t ex = static_cast<int32_t>((bits >> 23) & 0xff);
      const bool zero = (bits & 0x7fffffffu) == 0;
      lo[i] = std::min(lo[i], zero ? 255 : ex);
      hi[i] = std::max(hi[i], zero ? 0 : ex);
      s[i] += static_cast<double>(pc[i]);
    }
  }
  // Biased exponents: 2^-41 is 86, 2^46 is 173.
  for (int64_t i = 0; i < len; ++i) {
    exact[i] = lo[i] >= 86 && hi[i] <= 172 && hi[i] - lo[i] <= span;
    out[i] = static_cast<float>(s[i]) + 0.f;
  }
}

}  // namespace

void Op::finishPartials(size_t i, const float* partials, int64_t count, int64_t n,
                        rank_reduction::FixedSum& sum, RunContext& ctx, float* out) const {
  sum.setShift(gradShift(i, ctx));
  if (ctx.sync && rankReduced(i)) {
    rank_reduction::sumPartials(partials, count, n, sum);
    finishSum(i, sum, ctx, out);
    return;
  }
  std::vector<char> bad(static_cast<size_t>(std::max(1, omp_get_max_threads())), 0);
  // Values per thread: kGrainCostly conversions (a conv's weight gradient of
  // a few thousand values took a parallel region for a few microseconds of
  // work); each value's sum on one thread, so any split gives the same bits.
  const int64_t grain = std::max<int64_t>(1024, detail::kGrainCostly / std::max<int64_t>(1, count));
  detail::parallelRange(n, grain, [&](int64_t b, int64_t e) {
    bool my_bad = false;
    if (count == 1) {
      for (int64_t k = b; k < e; ++k)
        out[k] = rank_reduction::detail::roundTripFixed(partials[k], &my_bad);
    } else {
      for (int64_t k0 = b; k0 < e; k0 += kExactBlock) {
        const int64_t len = std::min(kExactBlock, e - k0);
        bool exact[kExactBlock];
        sumInDouble(partials + k0, n, count, len, out + k0, exact);
        for (int64_t i = 0; i < len; ++i) {
          if (exact[i]) continue;
          rank_reduction::Fixed v = 0;
          for (int64_t c = 0; c < count; ++c)
            v += rank_reduction::detail::toFixed(partials[c * n + k0 + i], &my_bad);
          out[k0 + i] = static_cast<float>(rank_reduction::detail::fromFixed(v));
        }
      }
    }
    if (my_bad) bad[static_cast<size_t>(omp_get_thread_num())] = 1;
  });
  // A bad partial makes the whole sum NaN, as FixedSum::value reports it.
  for (char x : bad)
    if (x) {
      std::fill(out, out + n, NAN);
      return;
    }
}

void requireF32(const Tensor& t, const std::string& label, const char* what) {
  if (t.dtype() != DType::kF32)
    SLIM_THROW(ModelError, label, ": ", what, " of dtype ", dtypeName(t.dtype()),
               " is not supported (float32 only)");
}

OpRegistry& OpRegistry::get() {
  static OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    registerConvOps(*r);
    registerGemmOps(*r);
    registerNormOps(*r);
    registerNormExtraOps(*r);
    registerConvTransposeOps(*r);
    registerResizeOps(*r);
    registerPReluOps(*r);
    registerReduceMaxOps(*r);
    registerPoolOps(*r);
    registerActivationOps(*r);
    registerElementwiseOps(*r);
    registerShapeOps(*r);
    registerSoftmaxOps(*r);
    registerMathOps(*r);
    registerTensorOps(*r);
    registerSliceOps(*r);
    registerLogicOps(*r);
    registerEinsumOps(*r);
    return r;
  }();
  return *registry;
}

void OpRegistry::add(const std::string& type, OpFactory factory) {
  for (auto& e : entries_) {
    if (e.first == type) {
      e.second = std::move(factory);
      return;
    }
  }
  entries_.emplace_back(type, std::move(factory));
}

bool OpRegistry::has(const std::string& type) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const auto& e) { return e.first == type; });
}

std::unique_ptr<Op> OpRegistry::create(const std::string& type, const Attrs& attrs,
                                       const std::string& node_name) const {
  for (const auto& e : entries_) {
    if (e.first != type) continue;
    std::unique_ptr<Op> op;
    try {
      op = e.second(attrs);
    } catch (const Error& err) {
      SLIM_THROW(ModelError, "node '", node_name, "' (", type, "): ", err.what());
    }
    op->label = type + " '" + node_name + "'";
    return op;
  }
  SLIM_THROW(ModelError, "node '", node_name, "': unsupported op type '", type, "'");
}

void OpRegistry::addInternal(const std::string& type, OpFactory factory) {
  add(type, std::move(factory));
  internal_.insert(type);
}

std::vector<std::string> OpRegistry::modelTypes() const {
  std::vector<std::string> out;
  for (const auto& t : types())
    if (!internal_.count(t)) out.push_back(t);
  return out;
}

std::vector<std::string> OpRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace slim::ops
