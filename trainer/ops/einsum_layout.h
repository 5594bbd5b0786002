// The strided layouts Einsum (einsum.cc) packs and sums its operands
// through: walks over a tensor's axes with source and destination strides,
// and an operand seen through its distinct labels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::ops::einsum {

// A dimension of a strided walk: `size` steps of `src` elements in the
// source and `dst` in the destination.
struct Dim {
  int64_t size, src, dst;
};

// dst[sum i_d * dim.dst] = sum over `inner` (source offsets, added in their
// order from zero) of src[sum i_d * dim.src + inner[r]]; a plain copy when
// `inner` is empty. Threads split the outer index space; the destination
// positions must be distinct (they are: dense, or one operand's diagonal).
void stridedSum(const float* src, float* dst, const std::vector<Dim>& outer,
                const std::vector<int64_t>& inner);

// Offsets of every index of `dims` (row-major), for stridedSum's `inner`.
std::vector<int64_t> offsetsOf(const std::vector<Dim>& dims);

// An operand seen through its distinct labels: strides add up over a
// repeated letter (the diagonal), and a size-1 ellipsis dimension that
// broadcasts against a larger one is left out.
struct View {
  const float* data = nullptr;
  std::vector<int> labels;
  std::vector<int64_t> strides;
  int64_t stride(int l) const {
    for (size_t k = 0; k < labels.size(); ++k)
      if (labels[k] == l) return strides[k];
    return -1;
  }
  bool has(int l) const { return stride(l) >= 0; }
  /// 0 for a label v lacks (a size-1 dimension: any stride will do).
  int64_t strideOr0(int l) const { return std::max<int64_t>(0, stride(l)); }
};

// A dense tensor and its labels in axis order.
struct Labelled {
  Tensor t;
  std::vector<int> labels;
  View view() const {
    View v;
    v.data = t.f32();
    v.labels = labels;
    v.strides.assign(labels.size(), 1);
    for (int k = static_cast<int>(labels.size()) - 2; k >= 0; --k)
      v.strides[k] = v.strides[k + 1] * t.dim(k + 1);
    return v;
  }
};

}  // namespace slim::ops::einsum
