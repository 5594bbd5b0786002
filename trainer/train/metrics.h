// Append-only JSON-lines metrics (<save_dir>/metrics.jsonl) and a tiny JSON
// object builder used for metrics, report.json and `eval` output.
#pragma once

#include <cstdint>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace slim::train {

/// Builds one JSON object with keys in insertion order.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, double v);
  JsonObject& add(const std::string& key, int64_t v);
  JsonObject& add(const std::string& key, int v) { return add(key, static_cast<int64_t>(v)); }
  JsonObject& add(const std::string& key, const std::string& v);
  JsonObject& add(const std::string& key, const char* v) { return add(key, std::string(v)); }
  JsonObject& add(const std::string& key, bool v);
  /// Adds a pre-serialised JSON value (object, array).
  JsonObject& addRaw(const std::string& key, const std::string& json);
  JsonObject& add(const std::string& key, const std::vector<double>& v);
  JsonObject& add(const std::string& key, const std::vector<std::string>& v);
  std::string str() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

/// Version of the JSON that commands print (stdout, report.json); raised when
/// a key changes meaning or goes away (docs/CLI.md).
constexpr int64_t kJsonSchemaVersion = 1;

/// The start of every object a command prints: {"command": ..., "schema_version": ...}.
JsonObject commandJson(const std::string& command);

/// A shape as a JSON integer array ("[1, 3, 224, 224]"; unknown dims are -1).
std::string jsonShape(const std::vector<int64_t>& shape);

/// Escapes a string as a JSON string literal (with quotes).
std::string jsonString(const std::string& s);
/// A JSON number; NaN/inf become null.
std::string jsonNumber(double v);

/// Appends one JSON object per line; flushes each line so a killed run keeps them.
class MetricsWriter {
 public:
  /// Opens (appending when `append`) the file; an empty path disables writing.
  MetricsWriter(const std::string& path, bool append);
  void write(const JsonObject& obj);

 private:
  std::ofstream out_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace slim::train
