// The op registry. Built-in families register explicitly (no static
// initialisers: they would be dropped when linking a static library).
#include <algorithm>
#include <mutex>

#include "trainer/ops/op.h"

namespace slim::ops {

void Op::backward(const std::vector<Tensor*>&, const std::vector<Tensor*>&,
                  const std::vector<const Tensor*>&, const std::vector<Tensor*>&,
                  RunContext&) {
  SLIM_THROW(Error, label, ": backward is not implemented");
}

Fixed sumOverRanks(StateSync& sync, FixedSum& sum, Fixed extra) {
  // Two extra slots: "some rank's partial was not representable", `extra`.
  const size_t n = sum.size();
  std::vector<Fixed> buf(sum.data(), sum.data() + n);
  buf.push_back(sum.bad() ? 1 : 0);
  buf.push_back(extra);
  sync.sumFixed(buf.data(), buf.size());
  std::copy(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), sum.data());
  if (buf[n] != 0) sum.setBad();
  return buf[n + 1];
}

void Op::finishSum(size_t i, FixedSum& sum, RunContext& ctx, float* out) const {
  const size_t n = sum.size();
  double world = 1;
  if (ctx.sync && rankReduced(i)) {
    sumOverRanks(*ctx.sync, sum);
    world = ctx.sync->size();
  }
  detail::parallelRange(static_cast<int64_t>(n), 16384, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      out[k] = static_cast<float>(sum.value(static_cast<size_t>(k)) / world);
  });
}

void Op::finishPartials(size_t i, const float* partials, int64_t count, int64_t n,
                        FixedSum& sum, RunContext& ctx, float* out) const {
  if (ctx.sync && rankReduced(i)) {
    sumPartials(partials, count, n, sum);
    finishSum(i, sum, ctx, out);
    return;
  }
  std::vector<char> bad(static_cast<size_t>(std::max(1, omp_get_max_threads())), 0);
  detail::parallelRange(n, 1024, [&](int64_t b, int64_t e) {
    bool my_bad = false;
    if (count == 1) {
      for (int64_t k = b; k < e; ++k) out[k] = detail::roundTripFixed(partials[k], &my_bad);
    } else {
      for (int64_t k = b; k < e; ++k) {
        Fixed v = 0;
        for (int64_t c = 0; c < count; ++c) v += detail::toFixed(partials[c * n + k], &my_bad);
        out[k] = static_cast<float>(detail::fromFixed(v));
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
    registerPoolOps(*r);
    registerActivationOps(*r);
    registerElementwiseOps(*r);
    registerShapeOps(*r);
    registerSoftmaxOps(*r);
    registerMathOps(*r);
    registerTensorOps(*r);
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

std::vector<std::string> OpRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace slim::ops
