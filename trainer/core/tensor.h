// Tensor: a shape, a dtype and a reference-counted, 64-byte aligned buffer.
// Copies are shallow (they share storage, like flashlight's Variable); use
// clone() for a deep copy. Layout is always contiguous row-major (NCHW for
// images). float32 is the compute type; int64 carries labels and shape
// tensors, uint8/int8/int32 serve masks and export.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/core/error.h"

namespace slim {

enum class DType : uint8_t { kF32 = 0, kI64 = 1, kU8 = 2, kI8 = 3, kI32 = 4 };

/// Size in bytes of one element of `t`.
size_t dtypeSize(DType t);
/// "float32", "int64", ... for messages.
const char* dtypeName(DType t);

using Shape = std::vector<int64_t>;

/// Number of elements of a shape (1 for a scalar shape {}).
int64_t numelOf(const Shape& s);
/// "[2, 3, 4]" for messages.
std::string shapeStr(const Shape& s);

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <>
struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <>
struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };
template <>
struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <>
struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };

class Tensor {
 public:
  /// An undefined tensor (no storage); defined() is false.
  Tensor() = default;
  /// A zero-filled tensor of the given shape and dtype.
  explicit Tensor(Shape shape, DType dtype = DType::kF32);

  /// A float tensor holding `values` with shape `shape` (sizes must match).
  static Tensor fromVector(Shape shape, const std::vector<float>& values);
  /// An int64 tensor holding `values` with shape `shape`.
  static Tensor fromInts(Shape shape, const std::vector<int64_t>& values);
  /// A float scalar (shape {}).
  static Tensor scalar(float v);
  /// Shape and dtype without storage (defined() false, data() null): what the
  /// executor leaves of an activation whose backward readers need only its
  /// shape (Op::backwardReadsInput).
  static Tensor shapeOnly(Shape shape, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  /// Size of dimension `i`; negative i counts from the end.
  int64_t dim(int i) const;
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  size_t bytes() const { return static_cast<size_t>(numel_) * dtypeSize(dtype_); }

  /// Typed pointer to the first element; throws if T does not match dtype().
  template <class T>
  T* data() {
    checkType(DTypeOf<T>::value);
    return reinterpret_cast<T*>(storage_.get());
  }
  template <class T>
  const T* data() const {
    checkType(DTypeOf<T>::value);
    return reinterpret_cast<const T*>(storage_.get());
  }
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }

  /// Deep copy.
  Tensor clone() const;
  /// Copies the contents of `src` (same numel and dtype) into this storage.
  void copyFrom(const Tensor& src);
  /// Sets every element to zero.
  void zero();
  /// Sets every float element to `v`.
  void fill(float v);
  /// Makes this tensor `shape`/`dtype`, reusing storage when it is large
  /// enough and not shared; contents are unspecified afterwards (not zeroed).
  void resize(const Shape& shape, DType dtype = DType::kF32);
  /// Same storage, new shape with the same numel (-1 allowed once).
  Tensor reshaped(Shape shape) const;
  /// True when both tensors share storage.
  bool sameStorage(const Tensor& o) const { return storage_ == o.storage_; }
  /// True when another tensor shares this storage (a view).
  bool storageShared() const { return storage_.use_count() > 1; }
  /// Bytes resize() can use without allocating (0 when undefined).
  size_t capacity() const { return storage_ ? capacity_ : 0; }
  /// Storage allocations this process has made (all threads): tests check
  /// that a steady training step allocates no activations.
  static uint64_t allocations();

 private:
  void checkType(DType want) const;
  void allocate(size_t bytes);

  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::kF32;
  size_t capacity_ = 0;  // bytes
  std::shared_ptr<std::byte[]> storage_;
};

}  // namespace slim
