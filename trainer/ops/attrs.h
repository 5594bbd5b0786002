// Node attributes: a small typed map, named as in ONNX (kernel_shape, strides,
// pads, group, transA, ...). Getters take a default and throw ModelError with
// the attribute name when a present value has the wrong type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::ops {

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, Tensor>;

class Attrs {
 public:
  bool has(const std::string& name) const { return map_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { map_[name] = std::move(v); }
  void erase(const std::string& name) { map_.erase(name); }

  /// Integer attribute (a float attribute holding an integral value is refused).
  int64_t getInt(const std::string& name, int64_t dflt) const;
  int64_t getInt(const std::string& name) const;
  /// Float attribute (an int attribute is converted).
  float getFloat(const std::string& name, float dflt) const;
  float getFloat(const std::string& name) const;
  std::string getString(const std::string& name, const std::string& dflt) const;
  std::string getString(const std::string& name) const;
  std::vector<int64_t> getInts(const std::string& name,
                               const std::vector<int64_t>& dflt) const;
  std::vector<int64_t> getInts(const std::string& name) const;
  std::vector<float> getFloats(const std::string& name,
                               const std::vector<float>& dflt) const;
  std::vector<std::string> getStrings(const std::string& name) const;
  const Tensor& getTensor(const std::string& name) const;

  const std::map<std::string, AttrValue>& all() const { return map_; }

 private:
  const AttrValue& at(const std::string& name) const;
  std::map<std::string, AttrValue> map_;
};

}  // namespace slim::ops
