// TrainingState <-> HDF5 (schema.h). Writing is deterministic: groups,
// datasets and attributes are created in name order with timestamps off.
// Reading validates everything and names the file and object on failure.
#include "checkpoint/state_io.h"

#include "checkpoint/schema.h"
#include "h5/h5.h"
#include "slim_config.h"

namespace slim::checkpoint {

using ::slim::detail::str;

namespace {

/// Root attribute recording how many datasets a group holds.
std::string countAttr(const char* group) { return std::string(group) + "_datasets"; }

bool storableDType(DType t) {
  return t == DType::kF32 || t == DType::kI64 || t == DType::kU8 || t == DType::kI8 || t == DType::kI32;
}

void writeGroup(const h5::Handle& file, const char* gname, const Group& g, const std::string& fname) {
  h5::Handle grp = h5::createGroup(file, gname);
  for (const auto& [name, t] : g.tensors) {
    const std::string where = str("checkpoint ", fname, ", tensor ", gname, "/", name);
    if (!t.defined()) SLIM_THROW(CheckpointError, where, ": tensor is undefined (no storage)");
    if (!storableDType(t.dtype()))
      SLIM_THROW(CheckpointError, where, ": dtype ", dtypeName(t.dtype()), " cannot be stored");
    if (g.words.count(name))
      SLIM_THROW(CheckpointError, where, ": name used both as a tensor and as a words array");
    const std::string link = escapeName(name);
    h5::writeDataset(grp, link, h5::elemOf(t.dtype()), t.shape(), t.raw());
    h5::Handle d = h5::openDataset(grp, link);
    h5::writeAttr(d, kNameAttr, name);
  }
  for (const auto& [name, w] : g.words) {
    const std::string link = escapeName(name);
    h5::writeDataset(grp, link, h5::Elem::kU64, {static_cast<int64_t>(w.size())}, w.data());
    h5::Handle d = h5::openDataset(grp, link);
    h5::writeAttr(d, kNameAttr, name);
  }
  for (const auto& [name, v] : g.attrs) {
    const std::string aname = escapeName(name);
    std::visit([&](const auto& x) { h5::writeAttr(grp, aname, x); }, v);
  }
}

/// Writes the root attributes and the seven groups of `s` into `file`.
void writeState(const h5::Handle& file, const TrainingState& s, const std::string& fname,
                int64_t created_unix) {
  h5::writeAttr(file, "magic", std::string(kMagic));
  h5::writeAttr(file, "format_version", kFormatVersion);
  h5::writeAttr(file, "step", s.step);
  h5::writeAttr(file, "epoch", s.epoch);
  h5::writeAttr(file, "sample_offset", s.sample_offset);
  h5::writeAttr(file, "world_size", s.world_size);
  h5::writeAttr(file, "seed", s.seed);
  h5::writeAttr(file, "config_yaml", s.config_yaml);
  h5::writeAttr(file, "created_unix", created_unix);
  h5::writeAttr(file, "writer", std::string("slimtrain ") + SLIM_VERSION);
  for (const auto& [gname, g] : s.groups()) {
    writeGroup(file, gname, *g, fname);
    h5::writeAttr(file, countAttr(gname),
                  static_cast<int64_t>(g->tensors.size() + g->words.size()));
  }
}

/// Runs an encoding: a CheckpointError passes unchanged, any other error
/// becomes "cannot encode checkpoint <fname>: <what>".
template <class F>
auto encoding(const std::string& fname, F&& f) {
  try {
    return f();
  } catch (const CheckpointError&) {
    throw;
  } catch (const Error& e) {
    SLIM_THROW(CheckpointError, "cannot encode checkpoint ", fname, ": ", e.what());
  }
}

}  // namespace

std::vector<char> encodeState(const TrainingState& s, const std::string& fname, int64_t created_unix) {
  return encoding(fname, [&] {
    size_t bytes = 1 << 16;  // metadata, attributes, config
    for (const auto& [gname, g] : s.groups()) {
      for (const auto& kv : g->tensors) bytes += kv.second.defined() ? kv.second.bytes() + 1024 : 0;
      for (const auto& kv : g->words) bytes += kv.second.size() * sizeof(uint64_t) + 1024;
    }
    h5::Handle file = h5::createMemoryFile(fname, bytes + bytes / 16 + s.config_yaml.size());
    writeState(file, s, fname, created_unix);
    std::vector<char> image = h5::fileImage(file, str("checkpoint ", fname));
    file.close(str("checkpoint ", fname));
    return image;
  });
}

uint64_t encodeStateTo(const TrainingState& s, const std::string& fname, int64_t created_unix,
                       h5::ByteSink& sink) {
  return encoding(fname, [&] {
    h5::StreamFile file(fname, sink);
    try {
      writeState(file.handle(), s, fname, created_unix);
    } catch (const Error&) {
      file.rethrowSinkError();  // a failed write (disk full, I/O error) as the sink reported it
      throw;
    }
    // finish() reports a failed write itself, naming the file's full size.
    const uint64_t size = file.finish(str("checkpoint ", fname));
    file.close(str("checkpoint ", fname));
    return size;
  });
}

// --- reading ----------------------------------------------------------------

namespace {

DType dtypeFor(h5::Elem e) {
  switch (e) {
    case h5::Elem::kF32: return DType::kF32;
    case h5::Elem::kI64: return DType::kI64;
    case h5::Elem::kU8: return DType::kU8;
    case h5::Elem::kI8: return DType::kI8;
    case h5::Elem::kI32: return DType::kI32;
    default: break;
  }
  SLIM_THROW(CheckpointError, "expected a float32, int64, uint8, int8, int32 or uint64 dataset, found ",
             h5::elemName(e));
}

void readDatasetInto(const h5::Handle& grp, const std::string& link, Group& g) {
  h5::Handle d = h5::openDataset(grp, link);
  const h5::DatasetInfo info = h5::datasetInfo(d);
  const std::string name = h5::hasAttr(d, kNameAttr) ? h5::readAttrStr(d, kNameAttr) : unescapeName(link);
  if (escapeName(name) != link)
    SLIM_THROW(CheckpointError, "name attribute '", name, "' does not match the link name (expected link '",
               escapeName(name), "')");
  if (numelOf(info.shape) > 0 && !info.shape.empty() && !info.fletcher32)
    SLIM_THROW(CheckpointError, "expected the Fletcher32 checksum filter, found none");
  if (info.elem == h5::Elem::kU64) {
    if (info.shape.size() != 1)
      SLIM_THROW(CheckpointError, "uint64 words: expected rank 1, found shape ", shapeStr(info.shape));
    std::vector<uint64_t> w(static_cast<size_t>(info.shape[0]));
    h5::readDataset(d, h5::Elem::kU64, w.data(), w.size() * sizeof(uint64_t));
    g.words.emplace(name, std::move(w));
    return;
  }
  Tensor t(info.shape, dtypeFor(info.elem));
  h5::readDataset(d, info.elem, t.raw(), t.bytes());
  g.tensors.emplace(name, std::move(t));
}

AttrValue readGroupAttr(const h5::Handle& grp, const std::string& aname) {
  if (h5::isStringAttr(grp, aname)) return h5::readAttrStr(grp, aname);
  switch (h5::attrElem(grp, aname)) {
    case h5::Elem::kF64: return h5::readAttrF64(grp, aname);
    case h5::Elem::kI64: return h5::readAttrI64(grp, aname);
    default: break;
  }
  SLIM_THROW(CheckpointError, "expected an int64, float64 or string attribute");
}

void readGroup(const h5::Handle& file, const char* gname, Group& g, const std::string& fname) {
  if (!h5::hasLink(file, gname))
    SLIM_THROW(CheckpointError, "checkpoint ", fname, ": required group /", gname, " is missing");
  h5::Handle grp = h5::openGroup(file, gname);
  for (const std::string& link : h5::listLinks(grp)) {
    try {
      if (!h5::isDataset(grp, link)) SLIM_THROW(CheckpointError, "expected a dataset, found a group");
      readDatasetInto(grp, link, g);
    } catch (const Error& e) {
      SLIM_THROW(CheckpointError, "checkpoint ", fname, ", dataset /", gname, "/", link, ": ", e.what());
    }
  }
  for (const std::string& aname : h5::listAttrs(grp)) {
    try {
      g.attrs.emplace(unescapeName(aname), readGroupAttr(grp, aname));
    } catch (const Error& e) {
      SLIM_THROW(CheckpointError, "checkpoint ", fname, ", attribute /", gname, "@", aname, ": ", e.what());
    }
  }
}

}  // namespace

TrainingState decodeStateFile(const std::string& fname) {
  TrainingState s;
  h5::Handle file;
  try {
    file = h5::openFileReadOnly(fname);
  } catch (const Error& e) {
    SLIM_THROW(CheckpointError, "checkpoint ", fname, " cannot be opened (truncated or not HDF5?): ", e.what());
  }
  const auto rootError = [&](const char* attr, const std::string& msg) {
    SLIM_THROW(CheckpointError, "checkpoint ", fname, ", root attribute ", attr, ": ", msg);
  };
  const auto readRoot = [&](const char* attr, auto reader) {
    try {
      return reader(file, attr);
    } catch (const Error& e) {
      rootError(attr, e.what());
    }
    return decltype(reader(file, attr)){};
  };
  if (!h5::hasAttr(file, "magic")) rootError("magic", str("expected \"", kMagic, "\", found none (not a slimtrain checkpoint)"));
  const std::string magic = readRoot("magic", h5::readAttrStr);
  if (magic != kMagic) rootError("magic", str("expected \"", kMagic, "\", found \"", magic, "\""));
  const int64_t version = readRoot("format_version", h5::readAttrI64);
  if (version != kFormatVersion)
    rootError("format_version", str("expected ", kFormatVersion, ", found ", version,
                                    version > kFormatVersion ? " (written by a newer slimtrain)" : ""));
  s.step = readRoot("step", h5::readAttrI64);
  s.epoch = readRoot("epoch", h5::readAttrI64);
  s.sample_offset = readRoot("sample_offset", h5::readAttrI64);
  s.world_size = readRoot("world_size", h5::readAttrI64);
  s.seed = readRoot("seed", h5::readAttrU64);
  s.config_yaml = readRoot("config_yaml", h5::readAttrStr);
  s.created_unix = readRoot("created_unix", h5::readAttrI64);
  if (s.step < 0 || s.epoch < 0 || s.sample_offset < 0 || s.world_size < 1)
    SLIM_THROW(CheckpointError, "checkpoint ", fname, ": invalid root attributes step=", s.step,
               " epoch=", s.epoch, " sample_offset=", s.sample_offset, " world_size=", s.world_size);
  for (const auto& [gname, g] : s.groups()) {
    const int64_t recorded = readRoot(countAttr(gname).c_str(), h5::readAttrI64);
    readGroup(file, gname, *g, fname);
    const int64_t found = static_cast<int64_t>(g->tensors.size() + g->words.size());
    if (found != recorded)
      SLIM_THROW(CheckpointError, "checkpoint ", fname, ", group /", gname, ": expected ", recorded,
                 " datasets (root attribute ", countAttr(gname), "), found ", found);
  }
  return s;
}

}  // namespace slim::checkpoint
