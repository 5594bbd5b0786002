// JSON helpers and the metrics.jsonl writer.
#include "trainer/train/metrics.h"

#include <cmath>
#include <cstdio>

#include "trainer/core/error.h"

namespace slim::train {

std::string jsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o + "\"";
}

std::string jsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

JsonObject commandJson(const std::string& command) {
  JsonObject o;
  o.add("command", command).add("schema_version", kJsonSchemaVersion);
  return o;
}

std::string jsonShape(const std::vector<int64_t>& shape) {
  std::string o = "[";
  for (size_t i = 0; i < shape.size(); ++i) o += (i ? ", " : "") + std::to_string(shape[i]);
  return o + "]";
}

JsonObject& JsonObject::add(const std::string& k, double v) {
  items_.emplace_back(k, jsonNumber(v));
  return *this;
}
JsonObject& JsonObject::add(const std::string& k, int64_t v) {
  items_.emplace_back(k, std::to_string(v));
  return *this;
}
JsonObject& JsonObject::add(const std::string& k, const std::string& v) {
  items_.emplace_back(k, jsonString(v));
  return *this;
}
JsonObject& JsonObject::add(const std::string& k, bool v) {
  items_.emplace_back(k, v ? "true" : "false");
  return *this;
}
JsonObject& JsonObject::addRaw(const std::string& k, const std::string& json) {
  items_.emplace_back(k, json);
  return *this;
}
JsonObject& JsonObject::add(const std::string& k, const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + jsonNumber(v[i]);
  items_.emplace_back(k, s + "]");
  return *this;
}

JsonObject& JsonObject::add(const std::string& k, const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += jsonString(v[i]);
  }
  items_.emplace_back(k, s + "]");
  return *this;
}

std::string JsonObject::str() const {
  std::string s = "{";
  for (size_t i = 0; i < items_.size(); ++i)
    s += (i ? ", " : "") + jsonString(items_[i].first) + ": " + items_[i].second;
  return s + "}";
}

MetricsWriter::MetricsWriter(const std::string& path, bool append) {
  if (path.empty()) return;
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  if (!out_) SLIM_THROW(Error, "cannot open metrics file ", path, " for writing");
}

void MetricsWriter::write(const JsonObject& obj) {
  if (!out_.is_open()) return;
  // Every line carries the wall time (Unix milliseconds) and the seconds
  // since this process opened the file.
  JsonObject line = obj;
  const auto now = std::chrono::system_clock::now();
  line.add("time_ms", static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               now.time_since_epoch()).count()));
  line.add("elapsed_s", std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                      start_).count());
  out_ << line.str() << '\n';
  out_.flush();
}

}  // namespace slim::train
