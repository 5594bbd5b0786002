// Implementation of the enforce helpers and the exit-code mapping.
#include "trainer/core/error.h"

namespace slim {

int exitCodeFor(const std::exception& e) {
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const ModelError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const DataError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const DivergenceError*>(&e) != nullptr) return kExitDiverged;
  return kExitRuntime;
}

namespace detail {

void throwEnforce(const char* file, int line, const char* cond,
                  const std::string& msg) {
  std::ostringstream os;
  os << file << ":" << line << ": check failed: " << cond;
  if (!msg.empty()) os << " " << msg;
  throw Error(os.str());
}

}  // namespace detail
}  // namespace slim
