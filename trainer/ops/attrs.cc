// Typed attribute access with errors naming the attribute.
#include "trainer/ops/attrs.h"

namespace slim::ops {

const AttrValue& Attrs::at(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end()) SLIM_THROW(ModelError, "missing required attribute '", name, "'");
  return it->second;
}

int64_t Attrs::getInt(const std::string& name, int64_t dflt) const {
  return has(name) ? getInt(name) : dflt;
}
int64_t Attrs::getInt(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  SLIM_THROW(ModelError, "attribute '", name, "' must be an integer");
}
float Attrs::getFloat(const std::string& name, float dflt) const {
  return has(name) ? getFloat(name) : dflt;
}
float Attrs::getFloat(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<float>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<float>(*p);
  SLIM_THROW(ModelError, "attribute '", name, "' must be a float");
}
std::string Attrs::getString(const std::string& name, const std::string& dflt) const {
  return has(name) ? getString(name) : dflt;
}
std::string Attrs::getString(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  SLIM_THROW(ModelError, "attribute '", name, "' must be a string");
}
std::vector<int64_t> Attrs::getInts(const std::string& name,
                                    const std::vector<int64_t>& dflt) const {
  return has(name) ? getInts(name) : dflt;
}
std::vector<int64_t> Attrs::getInts(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return {*p};
  SLIM_THROW(ModelError, "attribute '", name, "' must be a list of integers");
}
std::vector<float> Attrs::getFloats(const std::string& name,
                                    const std::vector<float>& dflt) const {
  if (!has(name)) return dflt;
  const AttrValue& v = at(name);
  if (auto p = std::get_if<std::vector<float>>(&v)) return *p;
  if (auto p = std::get_if<float>(&v)) return {*p};
  SLIM_THROW(ModelError, "attribute '", name, "' must be a list of floats");
}
std::vector<std::string> Attrs::getStrings(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<std::vector<std::string>>(&v)) return *p;
  SLIM_THROW(ModelError, "attribute '", name, "' must be a list of strings");
}
const Tensor& Attrs::getTensor(const std::string& name) const {
  const AttrValue& v = at(name);
  if (auto p = std::get_if<Tensor>(&v)) return *p;
  SLIM_THROW(ModelError, "attribute '", name, "' must be a tensor");
}

}  // namespace slim::ops
