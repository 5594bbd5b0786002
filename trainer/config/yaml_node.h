// Internal: a YAML node together with its key path and source, so every
// parse error can name file, line, column and key path (or the --set option
// that produced the value). Typed accessors implement PyYAML-compatible
// scalars (ints accepted where floats are expected).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slim::config::detail {

/// Where the document came from: file name and the --set overrides applied
/// (key path -> original "--set" text).
struct Source {
  std::string file;
  std::map<std::string, std::string> overrides;
  /// The user's config file (loadConfig): checks that depend on this machine
  /// (Global.num_threads vs. its cores) and notes are on. Off for
  /// parseConfigString (a checkpoint's config may come from another machine
  /// and is parsed again on resume / export).
  bool user_file = false;
  /// A missing TrainConfig section is allowed (the eval command needs none).
  bool train_optional = false;
};

/// A possibly absent YAML node with its dotted key path ("Global.Data.mean",
/// "Distillation.node[1]"). An absent node carries its parent's position.
class Node {
 public:
  Node(YAML::Node node, std::string path, const Source* src, YAML::Mark mark);

  const std::string& path() const { return path_; }
  const Source* source() const { return src_; }
  /// Present and not null (`key:` with no value counts as absent).
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool isMap() const { return node_.IsMap(); }
  bool isSeq() const { return node_.IsSequence(); }
  bool isScalar() const { return node_.IsScalar(); }
  const YAML::Node& raw() const { return node_; }

  /// Child of a map node (absent when missing or when this is absent/null).
  /// Throws if this node is present but not a map.
  Node operator[](const std::string& key) const;
  /// True if the map has `key` with a non-null value.
  bool has(const std::string& key) const { return (*this)[key].present(); }
  /// Elements of a sequence node (throws if not a sequence).
  std::vector<Node> items() const;

  /// Requires a map (or null = empty map) whose keys are all in `known`;
  /// unknown keys fail with a did-you-mean suggestion, duplicates fail too.
  void checkKeys(const std::vector<std::string>& known) const;

  /// "file: line L, column C" (1-based) or "--set 'k=v'".
  std::string where() const;
  /// Throws ConfigError "<where>: <path>: <msg>".
  [[noreturn]] void fail(const std::string& msg) const;
  /// A short description of the value for "found ..." messages.
  std::string found() const;

  std::string str() const;      ///< any scalar, as text
  int64_t i64() const;          ///< integer scalar
  /// An integer scalar in [lo, hi]; otherwise fails with "expected an integer
  /// in [lo, hi]<note>, found V" (">= lo" when hi is INT64_MAX). The one
  /// helper for every bounded integer key. `note` (e.g. " (0 = automatic)")
  /// follows the range.
  int64_t i64In(int64_t lo, int64_t hi, const std::string& note = "") const;
  double f64() const;           ///< int or float scalar, finite
  bool boolean() const;         ///< true/false (+ PyYAML's yes/no/on/off)
  /// A sequence of scalars, or (if allow_scalar) one scalar as a 1-list.
  std::vector<std::string> strList(bool allow_scalar) const;
  std::vector<double> f64List(bool allow_scalar) const;
  std::vector<int64_t> i64List() const;
  /// A list of integers, each in [lo, hi] (the element is named on failure).
  std::vector<int64_t> i64ListIn(int64_t lo, int64_t hi) const;
  /// A string that must be one of `allowed` (did-you-mean otherwise).
  std::string choice(const std::vector<std::string>& allowed) const;

 private:
  [[noreturn]] void expected(const std::string& what) const;
  YAML::Node node_;
  std::string path_;
  const Source* src_;
  YAML::Mark mark_;
};

/// Key path "a.b" joined, skipping an empty prefix.
std::string joinPath(const std::string& prefix, const std::string& key);

}  // namespace slim::config::detail
