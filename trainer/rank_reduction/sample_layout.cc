// The rules of sample_layout.h.
#include "trainer/rank_reduction/sample_layout.h"

#include <algorithm>

namespace slim::rank_reduction {
namespace {

int64_t product(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// The layout of `samples` samples along dimension d of shape s (each index
// of d is sample * (s[d] / samples) + j).
SampleLayout alongDim(const Shape& s, size_t d, int64_t samples) {
  return {product(s, 0, d), samples, s[d] / samples * product(s, d + 1, s.size())};
}

bool isOneOf(const std::string& t, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return t == n; });
}

}  // namespace

int sampleDim(const Shape& s, const SampleLayout& l) {
  if (!l.known()) return -1;
  for (size_t d = 0; d < s.size(); ++d)
    if (product(s, 0, d) == l.outer && s[d] % l.samples == 0 &&
        s[d] / l.samples * product(s, d + 1, s.size()) == l.inner)
      return static_cast<int>(d);
  return -1;
}

SampleLayout inputSampleLayout(const Shape& s) {
  if (s.empty() || s[0] <= 0) return {};
  return alongDim(s, 0, s[0]);
}

SampleLayout outputSampleLayout(const std::string& op_type, const ops::Attrs& attrs,
                                const std::vector<SampleLayout>& in,
                                const std::vector<const Shape*>& in_shapes, const Shape& out) {
  auto known = [&](size_t i) { return i < in.size() && in[i].known() && in_shapes[i]; };
  // Shapes, not samples; or data moved across dimensions in ways not followed.
  if (isOneOf(op_type, {"Shape", "Size", "ConstantOfShape", "Range", "NonZero", "Einsum"}))
    return {};
  // The elements keep their order: the layout, counted in elements, stays.
  if (isOneOf(op_type, {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}))
    return known(0) && numelOf(*in_shapes[0]) == numelOf(out) ? in[0] : SampleLayout{};
  if (op_type == "Transpose") {
    if (!known(0)) return {};
    const Shape& s = *in_shapes[0];
    const int d = sampleDim(s, in[0]);
    if (d < 0 || out.size() != s.size()) return {};
    std::vector<int64_t> perm = attrs.getInts("perm", {});
    if (perm.empty())
      for (size_t i = s.size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    for (size_t j = 0; j < perm.size(); ++j)
      if (perm[j] == d) return alongDim(out, j, in[0].samples);
    return {};
  }
  // An embedding lookup: Gather of a table by per-sample indices; the
  // indices' dimensions replace the gathered axis of the table.
  if (op_type == "Gather" && !known(0) && known(1) && in_shapes[0]) {
    const Shape& data = *in_shapes[0];
    const Shape& idx = *in_shapes[1];
    int64_t axis = attrs.getInt("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(data.size());
    const int d = sampleDim(idx, in[1]);
    if (d >= 0 && axis >= 0 && out.size() == data.size() - 1 + idx.size() &&
        std::equal(idx.begin(), idx.end(), out.begin() + axis))
      return alongDim(out, static_cast<size_t>(axis + d), in[1].samples);
    return {};
  }
  // A product with one matrix (a weight): each row of A gives a row of Y,
  // also where no dimension holds exactly the samples ([T*N, K]).
  if (isOneOf(op_type, {"MatMul", "Gemm"}) && known(0) && in_shapes[1] &&
      in_shapes[1]->size() == 2 && !out.empty() && attrs.getInt("transA", 0) == 0) {
    const int64_t k = in_shapes[0]->back();
    if (k > 0 && in[0].inner % k == 0)
      return {in[0].outer, in[0].samples, in[0].inner / k * out.back()};
  }
  // Any other op with an output shaped like a known input (element-wise,
  // PACT and fake quant, Softmax, normalisations, ...) writes each element
  // where it read it, also where no dimension holds the samples ([T*N, E]).
  // Not Gather: a permutation of rows keeps the shape.
  if (op_type != "Gather")
    for (size_t i = 0; i < in.size(); ++i)
      if (known(i) && *in_shapes[i] == out) return in[i];
  // Any other op: the dimensions up to the samples' pass through unchanged
  // (element-wise, broadcasting, reductions keeping dimensions, Conv, pools,
  // Concat / Slice / Split along later dimensions, ...).
  for (size_t i = 0; i < in.size(); ++i) {
    if (!known(i)) continue;
    const Shape& s = *in_shapes[i];
    const int d = sampleDim(s, in[i]);
    if (d < 0 || out.size() != s.size()) continue;
    if (op_type == "Gather") {  // the samples' dimension must not be the one gathered
      int64_t axis = attrs.getInt("axis", 0);
      if (axis < 0) axis += static_cast<int64_t>(s.size());
      if (axis <= d) continue;
    }
    if (std::equal(s.begin(), s.begin() + d + 1, out.begin()))
      return alongDim(out, d, in[i].samples);
  }
  return {};
}

}  // namespace slim::rank_reduction
