// Entry points: read the YAML (with line/column syntax errors), apply --set
// overrides, dispatch the top-level sections to their parsers.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/config/schema.h"
#include "trainer/config/suggest.h"
#include "trainer/core/error.h"

namespace slim::config {
namespace {

using detail::Node;
using detail::Source;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> splitPath(const std::string& p) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : p) {
    if (c == '.') { out.push_back(cur); cur.clear(); }
    else cur += c;
  }
  out.push_back(cur);
  return out;
}

// Applies one "--set a.b.c=value" to the document; records it in `src`.
void applyOverride(YAML::Node& root, const std::string& text, Source& src) {
  auto bad = [&](const std::string& msg) { SLIM_THROW(ConfigError, src.file, ": --set '", text, "': ", msg); };
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) bad("expected KEY.PATH=VALUE (e.g. TrainConfig.epochs=2)");
  {
    const std::string v = text.substr(eq + 1);
    if (v.find_first_not_of(" \t") == std::string::npos)
      bad("empty value; give one (e.g. TrainConfig.epochs=2), or 'null' to unset an optional "
          "key, or drop the option");
  }
  std::vector<std::string> comps = splitPath(text.substr(0, eq));
  // Write into the spelling the file already uses.
  const YAML::Node& croot = root;  // const access: no entries created
  if ((comps[0] == "QuantAware" && croot["Quantization"] && !croot["QuantAware"]) ||
      (comps[0] == "Quantization" && croot["QuantAware"] && !croot["Quantization"]))
    comps[0] = comps[0] == "QuantAware" ? "Quantization" : "QuantAware";
  std::string parent_path;
  for (const auto& c : comps) {
    if (c.empty()) bad("empty component in key path '" + text.substr(0, eq) + "'");
    const std::vector<std::string>* known = detail::knownKeysAt(parent_path);
    if (!known) bad("'" + parent_path + "' has no sub-keys");
    if (parent_path.empty() && contains(detail::kUnsupportedSections, c))
      bad("section '" + c + "' is not supported yet");
    if (!contains(*known, c))
      bad("unknown key '" + detail::joinPath(parent_path, c) + "'" + didYouMean(c, *known));
    parent_path = detail::joinPath(parent_path, c);
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    bad("cannot parse the value as YAML: " + e.msg);
  }
  // Walk down, creating maps. Node handles alias the document's nodes, so
  // rebinding uses reset() (operator= would overwrite the node itself).
  YAML::Node cur = root;
  std::string path;
  for (size_t i = 0; i + 1 < comps.size(); ++i) {
    path = detail::joinPath(path, comps[i]);
    YAML::Node child = cur[comps[i]];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap())
      bad("'" + path + "' is not a map in the file; set the whole value instead (--set '" + path +
          "={...}')");
    if (!child.IsMap()) child = YAML::Node(YAML::NodeType::Map);
    cur.reset(child);
  }
  const std::string& leaf = comps.back();
  if (comps.size() == 2) {
    for (const auto& a : detail::kKeyAliases) {
      if (a.section != comps[0]) continue;
      if (leaf == a.current) cur.remove(a.legacy);
      if (leaf == a.legacy) cur.remove(a.current);
    }
  }
  YAML::Node slot = cur[leaf];
  slot = value;
  src.overrides[path.empty() ? leaf : path + "." + leaf] = text;
}

Config parseDocument(const YAML::Node& root, const Source& src) {
  const Node top(root, "", &src, YAML::Mark::null_mark());
  if (!top.present()) top.fail("the config is empty");
  if (!top.isMap()) top.fail("expected a map of sections (Global, TrainConfig, ...), found " + top.found());
  std::vector<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string k = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
    const Node at(it->first, k, &src, it->first.Mark());
    if (contains(detail::kUnsupportedSections, k))
      at.fail("section '" + k + "' is not supported yet (supported: QuantAware/Quantization, "
              "Distillation, UnstructurePrune, TrainConfig)");
    if (!contains(detail::kSections, k)) {
      std::vector<std::string> all = detail::kSections;
      all.insert(all.end(), detail::kUnsupportedSections.begin(), detail::kUnsupportedSections.end());
      std::string list;
      for (const auto& s : detail::kSections) list += (list.empty() ? "" : ", ") + s;
      at.fail("unknown top-level section '" + k + "'" + didYouMean(k, all) + "; known sections: " + list);
    }
    if (contains(seen, k)) at.fail("duplicate section '" + k + "'");
    seen.push_back(k);
  }
  if (contains(seen, "QuantAware") && contains(seen, "Quantization"))
    top["Quantization"].fail("both QuantAware and its older name Quantization are given; keep one");

  Config c;
  c.global = detail::parseGlobal(top["Global"]);
  c.checkpoint = detail::parseCheckpoint(top["Checkpoint"], c.global);
  c.distributed = detail::parseDistributed(top["Distributed"]);
  for (const char* q : {"QuantAware", "Quantization"})
    if (contains(seen, q)) c.quant = detail::parseQuant(top[q]);
  if (contains(seen, "Distillation")) c.distill = detail::parseDistillation(top["Distillation"]);
  if (contains(seen, "UnstructurePrune")) c.prune = detail::parsePrune(top["UnstructurePrune"]);
  if (src.train_optional && !contains(seen, "TrainConfig"))
    c.train.epochs = 1;  // placeholder: nothing trains (eval)
  else
    c.train = detail::parseTrain(top["TrainConfig"]);
  return c;
}

// 0-based line of the marker ("---" at column 0) that starts the second
// document; `first` is the first document's root (its mark, if any, is where
// its content starts) and `second` the second's.
int secondDocumentLine(const std::string& text, const YAML::Node& first,
                       const YAML::Node& second) {
  std::vector<int> markers;
  std::istringstream in(text);
  std::string line;
  for (int i = 0; std::getline(in, line); ++i)
    if (line.rfind("---", 0) == 0 &&
        (line.size() == 3 || std::isspace(static_cast<unsigned char>(line[3]))))
      markers.push_back(i);
  const bool has_content = first.IsDefined() && !first.Mark().is_null();
  for (int m : markers)
    if (has_content && m > first.Mark().line) return m;
  if (!has_content && markers.size() >= 2) return markers[1];
  if (!second.Mark().is_null()) return second.Mark().line;
  return markers.empty() ? 0 : markers.back();
}

Config parseText(const std::string& yaml_text, Source& src,
                 const std::vector<std::string>& overrides) {
  const std::string& file = src.file;
  YAML::Node root;
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(yaml_text);
    if (docs.size() > 1)
      SLIM_THROW(ConfigError, file, ": line ", secondDocumentLine(yaml_text, docs[0], docs[1]) + 1,
                 ", column 1: a second YAML document starts here (", docs.size(),
                 " documents in the file); a config is one document: remove this '---' line "
                 "and what follows, or merge it into the first");
    if (!docs.empty()) root = docs[0];
  } catch (const YAML::Exception& e) {
    std::ostringstream os;
    os << file;
    if (!e.mark.is_null()) os << ": line " << e.mark.line + 1 << ", column " << e.mark.column + 1;
    os << ": YAML syntax error: " << e.msg;
    throw ConfigError(os.str());
  }
  if (!overrides.empty() && (!root.IsDefined() || root.IsNull())) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) {
    if (!root.IsMap()) break;  // reported by parseDocument
    applyOverride(root, o, src);
  }
  return parseDocument(root, src);
}

}  // namespace

Config parseConfigString(const std::string& yaml_text, const std::string& pretend_filename,
                         const std::vector<std::string>& overrides) {
  Source src;
  src.file = pretend_filename;
  return parseText(yaml_text, src, overrides);
}

Config loadConfig(const std::string& path, const std::vector<std::string>& overrides,
                  bool train_optional) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    SLIM_THROW(ConfigError, path, ": is a directory, expected a YAML config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) SLIM_THROW(ConfigError, path, ": cannot open the config file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) SLIM_THROW(ConfigError, path, ": cannot read the config file");
  Source src;
  src.file = path;
  src.user_file = true;
  src.train_optional = train_optional;
  return parseText(ss.str(), src, overrides);
}

}  // namespace slim::config
