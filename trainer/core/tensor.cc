// Tensor storage management and small helpers.
#include "trainer/core/tensor.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace slim {

size_t dtypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kI8: return 1;
    case DType::kI32: return 4;
  }
  return 0;
}

const char* dtypeName(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kI8: return "int8";
    case DType::kI32: return "int32";
  }
  return "?";
}

int64_t numelOf(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    SLIM_ENFORCE_GE(d, 0, "negative dimension in shape ", shapeStr(s));
    n *= d;
  }
  return n;
}

std::string shapeStr(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  numel_ = numelOf(shape_);
  allocate(bytes());
  if (bytes() > 0) std::memset(storage_.get(), 0, bytes());
}

Tensor Tensor::shapeOnly(Shape shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = numelOf(t.shape_);
  t.dtype_ = dtype;
  return t;
}

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

uint64_t Tensor::allocations() { return g_allocations.load(std::memory_order_relaxed); }

void Tensor::allocate(size_t nbytes) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  // 64-byte alignment for vector loads; never a null storage for defined().
  size_t cap = ((nbytes + 63) / 64) * 64;
  if (cap == 0) cap = 64;
  void* p = std::aligned_alloc(64, cap);
  if (p == nullptr) SLIM_THROW(Error, "out of memory allocating ", cap, " bytes");
  storage_ = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p),
                                          [](std::byte* q) { std::free(q); });
  capacity_ = cap;
}

Tensor Tensor::fromVector(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  SLIM_ENFORCE_EQ(t.numel(), static_cast<int64_t>(values.size()), "fromVector");
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.bytes());
  return t;
}

Tensor Tensor::fromInts(Shape shape, const std::vector<int64_t>& values) {
  Tensor t(std::move(shape), DType::kI64);
  SLIM_ENFORCE_EQ(t.numel(), static_cast<int64_t>(values.size()), "fromInts");
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.bytes());
  return t;
}

Tensor Tensor::scalar(float v) {
  Tensor t(Shape{});
  t.f32()[0] = v;
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  SLIM_ENFORCE(j >= 0 && j < n, "dim(", i, ") of tensor with shape ", shapeStr(shape_));
  return shape_[j];
}

void Tensor::checkType(DType want) const {
  SLIM_ENFORCE(storage_ != nullptr, "access to an undefined tensor");
  if (want != dtype_)
    SLIM_THROW(Error, "tensor dtype is ", dtypeName(dtype_), ", accessed as ",
               dtypeName(want), " (shape ", shapeStr(shape_), ")");
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t(shape_, dtype_);
  if (bytes() > 0) std::memcpy(t.raw(), raw(), bytes());
  return t;
}

void Tensor::copyFrom(const Tensor& src) {
  SLIM_ENFORCE(src.dtype() == dtype_ && src.numel() == numel_, "copyFrom: ",
               dtypeName(src.dtype()), shapeStr(src.shape()), " into ",
               dtypeName(dtype_), shapeStr(shape_));
  if (bytes() > 0 && raw() != src.raw()) std::memcpy(raw(), src.raw(), bytes());
}

void Tensor::zero() {
  if (defined() && bytes() > 0) std::memset(raw(), 0, bytes());
}

void Tensor::fill(float v) {
  float* p = f32();
  for (int64_t i = 0; i < numel_; ++i) p[i] = v;
}

void Tensor::resize(const Shape& shape, DType dtype) {
  int64_t n = numelOf(shape);
  size_t need = static_cast<size_t>(n) * dtypeSize(dtype);
  if (storage_ == nullptr || need > capacity_ || storage_.use_count() > 1)
    allocate(need);
  shape_ = shape;
  numel_ = n;
  dtype_ = dtype;
}

Tensor Tensor::reshaped(Shape shape) const {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SLIM_ENFORCE(infer < 0, "reshape to ", shapeStr(shape), ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SLIM_ENFORCE(known > 0 && numel_ % known == 0, "cannot reshape ",
                 shapeStr(shape_), " to ", shapeStr(shape));
    shape[infer] = numel_ / known;
  }
  if (numelOf(shape) != numel_)
    SLIM_THROW(ShapeError, "cannot reshape ", shapeStr(shape_), " (", numel_,
               " elements) to ", shapeStr(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace slim
