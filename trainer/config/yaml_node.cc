// Internal: typed, position-aware access to yaml-cpp nodes for the parser.
#include "trainer/config/yaml_node.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "trainer/config/suggest.h"
#include "trainer/core/error.h"

namespace slim::config::detail {

std::string joinPath(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

Node::Node(YAML::Node node, std::string path, const Source* src, YAML::Mark mark)
    : node_(std::move(node)), path_(std::move(path)), src_(src), mark_(mark) {
  // Point at the value when it is a scalar or starts on the key's line (flow
  // collections); at the key for block collections, which start a line later.
  if (node_.IsDefined() && !node_.Mark().is_null() &&
      (mark_.is_null() || node_.IsScalar() || node_.Mark().line == mark_.line))
    mark_ = node_.Mark();
}

Node Node::operator[](const std::string& key) const {
  const std::string child_path = joinPath(path_, key);
  if (!present()) return Node(YAML::Node(YAML::NodeType::Undefined), child_path, src_, mark_);
  if (!isMap()) expected("a map with key '" + key + "'");
  const YAML::Node& n = node_;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key)
      return Node(it->second, child_path, src_, it->first.Mark());
  }
  return Node(YAML::Node(YAML::NodeType::Undefined), child_path, src_, mark_);
}

std::vector<Node> Node::items() const {
  if (!isSeq()) expected("a list");
  std::vector<Node> out;
  for (size_t i = 0; i < node_.size(); ++i)
    out.emplace_back(node_[i], path_ + "[" + std::to_string(i) + "]", src_, node_[i].Mark());
  return out;
}

void Node::checkKeys(const std::vector<std::string>& known) const {
  if (!present()) return;
  if (!isMap()) expected("a map");
  std::set<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    Node key(it->first, path_, src_, it->first.Mark());
    if (!it->first.IsScalar()) key.fail("a key must be a plain name, found " + key.found());
    const std::string k = it->first.Scalar();
    Node at(it->first, joinPath(path_, k), src_, it->first.Mark());
    if (!seen.insert(k).second) at.fail("duplicate key '" + k + "'");
    bool ok = false;
    for (const auto& c : known) ok = ok || c == k;
    if (!ok) {
      std::string msg = "unknown key '" + k + "'" + didYouMean(k, known);
      msg += "; known keys: ";
      for (size_t i = 0; i < known.size(); ++i) msg += (i ? ", " : "") + known[i];
      at.fail(msg);
    }
  }
}

std::string Node::where() const {
  if (src_) {
    for (const auto& [p, text] : src_->overrides) {
      if (path_ == p || path_.rfind(p + ".", 0) == 0 || path_.rfind(p + "[", 0) == 0)
        return src_->file + ": --set '" + text + "'";
    }
  }
  std::string w = src_ ? src_->file : std::string("<config>");
  if (!mark_.is_null())
    w += ": line " + std::to_string(mark_.line + 1) + ", column " +
         std::to_string(mark_.column + 1);
  return w;
}

void Node::fail(const std::string& msg) const {
  SLIM_THROW(ConfigError, where(), ": ", path_.empty() ? "" : path_ + ": ", msg);
}

std::string Node::found() const {
  if (!node_.IsDefined() || node_.IsNull()) return "nothing";
  if (node_.IsMap()) return "a map";
  if (node_.IsSequence()) return "a list";
  return "'" + node_.Scalar() + "'";
}

void Node::expected(const std::string& what) const {
  fail("expected " + what + ", found " + found());
}

std::string Node::str() const {
  if (!isScalar()) expected("a string");
  return node_.Scalar();
}

int64_t Node::i64() const {
  if (!isScalar()) expected("an integer");
  const std::string& s = node_.Scalar();
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e || b == e) expected("an integer");
  return v;
}

int64_t Node::i64In(int64_t lo, int64_t hi, const std::string& note) const {
  const int64_t v = i64();
  if (v < lo || v > hi) {
    const std::string range = hi == std::numeric_limits<int64_t>::max()
                                  ? ">= " + std::to_string(lo)
                                  : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    fail("expected an integer " + range + note + ", found " + std::to_string(v));
  }
  return v;
}

double Node::f64() const {
  if (!isScalar()) expected("a float");
  const std::string& s = node_.Scalar();
  if (s.empty()) expected("a float");
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) expected("a float");
  return v;
}

bool Node::boolean() const {
  if (!isScalar()) expected("true or false");
  static const std::set<std::string> kTrue = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE", "no", "No", "off", "Off"};
  if (kTrue.count(node_.Scalar())) return true;
  if (kFalse.count(node_.Scalar())) return false;
  expected("true or false");
}

std::vector<std::string> Node::strList(bool allow_scalar) const {
  if (allow_scalar && isScalar()) return {str()};
  if (!isSeq()) expected(allow_scalar ? "a string or a list of strings" : "a list of strings");
  std::vector<std::string> out;
  for (const Node& n : items()) out.push_back(n.str());
  return out;
}

std::vector<double> Node::f64List(bool allow_scalar) const {
  if (allow_scalar && isScalar()) return {f64()};
  if (!isSeq()) expected(allow_scalar ? "a float or a list of floats" : "a list of floats");
  std::vector<double> out;
  for (const Node& n : items()) out.push_back(n.f64());
  return out;
}

std::vector<int64_t> Node::i64List() const {
  if (!isSeq()) expected("a list of integers");
  std::vector<int64_t> out;
  for (const Node& n : items()) out.push_back(n.i64());
  return out;
}

std::vector<int64_t> Node::i64ListIn(int64_t lo, int64_t hi) const {
  if (!isSeq()) expected("a list of integers");
  std::vector<int64_t> out;
  for (const Node& n : items()) out.push_back(n.i64In(lo, hi));
  return out;
}

std::string Node::choice(const std::vector<std::string>& allowed) const {
  const std::string s = str();
  for (const auto& a : allowed)
    if (a == s) return s;
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i) list += (i ? ", " : "") + allowed[i];
  fail("expected one of [" + list + "], found '" + s + "'" + didYouMean(s, allowed));
}

}  // namespace slim::config::detail
