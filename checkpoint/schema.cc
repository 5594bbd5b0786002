// Name escaping for HDF5 link names (see the schema in schema.h).
#include "checkpoint/schema.h"

#include "trainer/core/error.h"

namespace slim::checkpoint {

std::string escapeName(const std::string& name) {
  if (name.empty()) SLIM_THROW(CheckpointError, "checkpoint tensor or attribute names must not be empty");
  std::string out;
  out.reserve(name.size() + 8);
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '%') out += "%25";
    else if (c == '/') out += "%2F";
    else if (c == '\0') out += "%00";
    else if (c == '.' && i == 0) out += "%2E";
    else out += c;
  }
  return out;
}

namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string unescapeName(const std::string& link) {
  std::string out;
  out.reserve(link.size());
  for (size_t i = 0; i < link.size(); ++i) {
    if (link[i] != '%') {
      out += link[i];
      continue;
    }
    const int hi = i + 2 < link.size() ? hexValue(link[i + 1]) : -1;
    const int lo = i + 2 < link.size() ? hexValue(link[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      SLIM_THROW(CheckpointError, "malformed escaped name '", link, "' at offset ", i);
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace slim::checkpoint
