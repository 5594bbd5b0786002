// TrainingState group access, bytewise diff (resume tests) and layout check.
#include "checkpoint/training_state.h"

#include <cstring>
#include <set>

namespace slim::checkpoint {

using ::slim::detail::str;

std::vector<std::pair<const char*, Group*>> TrainingState::groups() {
  return {{"params", &params},       {"buffers", &buffers}, {"masks", &masks},
          {"quant", &quant},         {"optimizer", &optimizer},
          {"schedule", &schedule},   {"rng", &rng}};
}

std::vector<std::pair<const char*, const Group*>> TrainingState::groups() const {
  std::vector<std::pair<const char*, const Group*>> out;
  for (const auto& [n, g] : const_cast<TrainingState*>(this)->groups()) out.emplace_back(n, g);
  return out;
}

namespace {

std::string elementText(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return str(t.data<float>()[i]);
    case DType::kI64: return str(t.data<int64_t>()[i]);
    case DType::kU8: return str(static_cast<int>(t.data<uint8_t>()[i]));
    case DType::kI8: return str(static_cast<int>(t.data<int8_t>()[i]));
    case DType::kI32: return str(t.data<int32_t>()[i]);
  }
  return "?";
}

std::string attrText(const AttrValue& v) {
  return std::visit([](const auto& x) { return str(x); }, v);
}

void diffTensor(const std::string& where, const Tensor& a, const Tensor& b, std::vector<std::string>& out) {
  if (a.defined() != b.defined()) {
    out.push_back(str(where, ": defined ", a.defined(), " vs ", b.defined()));
    return;
  }
  if (!a.defined()) return;
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
    out.push_back(str(where, ": ", dtypeName(a.dtype()), " ", shapeStr(a.shape()), " vs ",
                      dtypeName(b.dtype()), " ", shapeStr(b.shape())));
    return;
  }
  const auto* pa = static_cast<const unsigned char*>(a.raw());
  const auto* pb = static_cast<const unsigned char*>(b.raw());
  const size_t n = a.bytes();
  if (n == 0 || std::memcmp(pa, pb, n) == 0) return;
  size_t first = 0;
  while (pa[first] == pb[first]) ++first;
  size_t count = 0;
  for (size_t i = first; i < n; ++i) count += pa[i] != pb[i];
  const int64_t elem = static_cast<int64_t>(first / dtypeSize(a.dtype()));
  out.push_back(str(where, ": ", count, " byte(s) differ, first at byte ", first, " (element ", elem, ": ",
                    elementText(a, elem), " vs ", elementText(b, elem), ")"));
}

template <class Map, class Fn>
void diffMaps(const std::string& prefix, const char* what, const Map& a, const Map& b,
              std::vector<std::string>& out, Fn&& same) {
  for (const auto& [k, va] : a) {
    auto it = b.find(k);
    if (it == b.end()) out.push_back(str(prefix, k, ": ", what, " only in the first state"));
    else same(prefix + k, va, it->second);
  }
  for (const auto& [k, vb] : b)
    if (!a.count(k)) out.push_back(str(prefix, k, ": ", what, " only in the second state"));
}

}  // namespace

std::vector<std::string> diffStates(const TrainingState& a, const TrainingState& b) {
  std::vector<std::string> out;
  const auto scalar = [&](const char* name, const auto& x, const auto& y) {
    if (x != y) out.push_back(str(name, ": ", x, " vs ", y));
  };
  scalar("step", a.step, b.step);
  scalar("epoch", a.epoch, b.epoch);
  scalar("sample_offset", a.sample_offset, b.sample_offset);
  scalar("world_size", a.world_size, b.world_size);
  scalar("seed", a.seed, b.seed);
  if (a.config_yaml != b.config_yaml)
    out.push_back(str("config_yaml: differs (", a.config_yaml.size(), " vs ", b.config_yaml.size(), " bytes)"));
  const auto ga = a.groups();
  const auto gb = b.groups();
  for (size_t i = 0; i < ga.size(); ++i) {
    const std::string prefix = std::string(ga[i].first) + "/";
    const Group& x = *ga[i].second;
    const Group& y = *gb[i].second;
    diffMaps(prefix, "tensor", x.tensors, y.tensors, out,
             [&](const std::string& w, const Tensor& p, const Tensor& q) { diffTensor(w, p, q, out); });
    diffMaps(prefix, "words", x.words, y.words, out,
             [&](const std::string& w, const std::vector<uint64_t>& p, const std::vector<uint64_t>& q) {
               if (p.size() != q.size()) out.push_back(str(w, ": ", p.size(), " vs ", q.size(), " words"));
               else
                 for (size_t j = 0; j < p.size(); ++j)
                   if (p[j] != q[j]) {
                     out.push_back(str(w, ": word ", j, ": ", p[j], " vs ", q[j]));
                     break;
                   }
             });
    diffMaps(prefix + "@", "attribute", x.attrs, y.attrs, out,
             [&](const std::string& w, const AttrValue& p, const AttrValue& q) {
               // Compare doubles by bits so -0.0/0.0 and NaNs are told apart exactly.
               const bool same = p.index() == q.index() &&
                                 (p.index() != 1 ||
                                  std::memcmp(&std::get<double>(p), &std::get<double>(q), sizeof(double)) == 0) &&
                                 (p.index() == 1 || p == q);
               if (!same) out.push_back(str(w, ": ", attrText(p), " vs ", attrText(q)));
             });
  }
  return out;
}

void checkLayout(const TrainingState& expected, const TrainingState& found, const std::string& file) {
  const auto ge = expected.groups();
  const auto gf = found.groups();
  for (size_t i = 0; i < ge.size(); ++i) {
    const char* g = ge[i].first;
    const Group& e = *ge[i].second;
    const Group& f = *gf[i].second;
    for (const auto& [name, te] : e.tensors) {
      auto it = f.tensors.find(name);
      if (it == f.tensors.end())
        SLIM_THROW(CheckpointError, "checkpoint ", file, ", dataset /", g, "/", name,
                   ": expected ", dtypeName(te.dtype()), " ", shapeStr(te.shape()), ", found none");
      const Tensor& tf = it->second;
      if (tf.dtype() != te.dtype() || tf.shape() != te.shape())
        SLIM_THROW(CheckpointError, "checkpoint ", file, ", dataset /", g, "/", name, ": expected ",
                   dtypeName(te.dtype()), " ", shapeStr(te.shape()), ", found ", dtypeName(tf.dtype()), " ",
                   shapeStr(tf.shape()));
    }
    for (const auto& [name, tf] : f.tensors)
      if (!e.tensors.count(name))
        SLIM_THROW(CheckpointError, "checkpoint ", file, ", dataset /", g, "/", name, ": expected none (",
                   "not part of the current model), found ", dtypeName(tf.dtype()), " ", shapeStr(tf.shape()));
    for (const auto& [name, we] : e.words) {
      auto it = f.words.find(name);
      const size_t n = it == f.words.end() ? 0 : it->second.size();
      if (it == f.words.end() || n != we.size())
        SLIM_THROW(CheckpointError, "checkpoint ", file, ", dataset /", g, "/", name, ": expected ",
                   we.size(), " uint64 words, found ", it == f.words.end() ? std::string("none") : str(n));
    }
  }
}

}  // namespace slim::checkpoint
