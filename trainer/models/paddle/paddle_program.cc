// ProgramDesc parsing with located errors: protobuf's parser only says
// "failed", so on failure a wire-level scan of ProgramDesc -> BlockDesc ->
// VarDesc/OpDesc finds the byte offset of the first malformed field.
#include "trainer/models/paddle/paddle_program.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "trainer/models/paddle/framework.pb.h"

namespace slim::models {
namespace proto = paddle::framework::proto;

namespace {

// Reads a varint at `p`; false when it runs past `end` or over 10 bytes.
bool readVarint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p >= end) return false;
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Scans one message's fields in [p, end). `nested(field)` says which
// length-delimited fields are sub-messages to descend into (depth-limited).
// Returns the absolute offset of the first problem, or -1.
using NestedFn = int (*)(int level, uint64_t field);

int64_t scanMessage(const uint8_t* base, const uint8_t* p, const uint8_t* end,
                    int level, NestedFn nested, std::string& why) {
  while (p < end) {
    const uint8_t* field_start = p;
    uint64_t tag;
    if (!readVarint(p, end, tag)) { why = "truncated field tag"; return field_start - base; }
    uint64_t field = tag >> 3, wire = tag & 7;
    if (field == 0) { why = "field number 0"; return field_start - base; }
    uint64_t v;
    switch (wire) {
      case 0:
        if (!readVarint(p, end, v)) { why = "truncated varint"; return field_start - base; }
        break;
      case 1:
        if (end - p < 8) { why = "truncated 8-byte value"; return field_start - base; }
        p += 8;
        break;
      case 5:
        if (end - p < 4) { why = "truncated 4-byte value"; return field_start - base; }
        p += 4;
        break;
      case 2: {
        if (!readVarint(p, end, v)) { why = "truncated length"; return field_start - base; }
        if (v > static_cast<uint64_t>(end - p)) {
          why = ::slim::detail::str("length ", v, " runs past the end of the enclosing message (",
                            end - p, " bytes left)");
          return field_start - base;
        }
        int sub = nested(level, field);
        if (sub >= 0) {
          int64_t bad = scanMessage(base, p, p + v, sub, nested, why);
          if (bad >= 0) return bad;
        }
        p += v;
        break;
      }
      default:
        why = ::slim::detail::str("invalid wire type ", wire, " (field ", field, ")");
        return field_start - base;
    }
  }
  return -1;
}

// Levels: 0 ProgramDesc, 1 BlockDesc, 2 VarDesc / OpDesc (not distinguished
// further: their nested messages are scanned as opaque bytes).
int programNesting(int level, uint64_t field) {
  if (level == 0 && field == 1) return 1;                    // blocks
  if (level == 1 && (field == 3 || field == 4)) return 2;    // vars, ops
  return -1;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

namespace detail {

std::string readFileBytes(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) SLIM_THROW(ModelError, "cannot open Paddle ", what, " file '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) SLIM_THROW(ModelError, "error reading Paddle ", what, " file '", path, "'");
  return ss.str();
}

void parseProgramDesc(const void* data, size_t size, const std::string& label,
                      proto::ProgramDesc& out) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size > 0 && (bytes[0] == '{' || bytes[0] == '['))
    SLIM_THROW(ModelError, "'", label, "' looks like JSON (a Paddle 3.x PIR program); "
               "only protobuf ProgramDesc (.pdmodel / __model__) is supported: "
               "re-export with FLAGS_enable_pir_api=0");
  if (size > static_cast<size_t>(INT32_MAX))
    SLIM_THROW(ModelError, "'", label, "' is too large for a ProgramDesc (", size, " bytes)");
  if (!out.ParseFromArray(data, static_cast<int>(size))) {
    std::string why;
    int64_t bad = scanMessage(bytes, bytes, bytes + size, 0, programNesting, why);
    if (bad >= 0)
      SLIM_THROW(ModelError, "corrupt Paddle program '", label, "': ", why, " at byte offset ",
                 bad, " of ", size);
    SLIM_THROW(ModelError, "corrupt Paddle program '", label, "' (", size,
               " bytes): protobuf parse failed inside a nested message "
               "(no structural problem at the block/op/var level)");
  }
  if (out.blocks_size() == 0)
    SLIM_THROW(ModelError, "Paddle program '", label, "' has no blocks (", size,
               " bytes; is it a ProgramDesc?)");
}

const char* varTypeName(int type) {
  if (proto::VarType::Type_IsValid(type))
    return proto::VarType::Type_Name(static_cast<proto::VarType::Type>(type)).c_str();
  return "UNKNOWN";
}

size_t podTypeSize(int type) {
  switch (type) {
    case proto::VarType::BOOL: case proto::VarType::UINT8: case proto::VarType::INT8:
    case proto::VarType::FP8_E4M3FN: case proto::VarType::FP8_E5M2:
      return 1;
    case proto::VarType::INT16: case proto::VarType::FP16: case proto::VarType::BF16:
      return 2;
    case proto::VarType::INT32: case proto::VarType::FP32:
      return 4;
    case proto::VarType::INT64: case proto::VarType::FP64: case proto::VarType::SIZE_T:
    case proto::VarType::COMPLEX64:
      return 8;
    case proto::VarType::COMPLEX128:
      return 16;
    default:
      return 0;
  }
}

std::vector<std::string> paramNames(const proto::ProgramDesc& p) {
  std::vector<std::string> names;
  for (const auto& v : p.blocks(0).vars()) {
    if (!v.persistable()) continue;
    auto t = v.type().type();
    if (t == proto::VarType::FEED_MINIBATCH || t == proto::VarType::FETCH_LIST ||
        t == proto::VarType::RAW || t == proto::VarType::READER)
      continue;
    names.push_back(v.name());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace detail

std::vector<std::string> PaddleProgramInfo::opTypes() const {
  std::vector<std::string> types;
  for (const auto& op : ops)
    if (std::find(types.begin(), types.end(), op.type) == types.end()) types.push_back(op.type);
  return types;
}

const PaddleVarInfo* PaddleProgramInfo::var(const std::string& name) const {
  for (const auto& v : vars)
    if (v.name == name) return &v;
  return nullptr;
}

PaddleProgramInfo parsePaddleProgramBytes(const void* data, size_t size,
                                          const std::string& label) {
  proto::ProgramDesc prog;
  detail::parseProgramDesc(data, size, label, prog);
  PaddleProgramInfo info;
  info.version = prog.has_version() ? prog.version().version() : 0;
  info.num_blocks = prog.blocks_size();
  const auto& block = prog.blocks(0);
  for (const auto& v : block.vars()) {
    PaddleVarInfo vi;
    vi.name = v.name();
    vi.persistable = v.persistable();
    vi.kind = v.type().has_type() ? v.type().type() : -1;
    if (v.type().has_lod_tensor() && v.type().lod_tensor().has_tensor()) {
      const auto& td = v.type().lod_tensor().tensor();
      vi.dtype = td.has_data_type() ? td.data_type() : -1;
      vi.dims.assign(td.dims().begin(), td.dims().end());
      vi.has_dims = true;
    }
    info.vars.push_back(std::move(vi));
  }
  for (const auto& op : block.ops()) {
    PaddleOpInfo oi;
    oi.type = op.type();
    for (const auto& in : op.inputs())
      oi.inputs[in.parameter()].assign(in.arguments().begin(), in.arguments().end());
    for (const auto& o : op.outputs())
      oi.outputs[o.parameter()].assign(o.arguments().begin(), o.arguments().end());
    for (const auto& a : op.attrs()) oi.attr_names.push_back(a.name());
    info.ops.push_back(std::move(oi));
  }
  info.param_names = detail::paramNames(prog);
  return info;
}

PaddleProgramInfo parsePaddleProgram(const std::string& path) {
  if (endsWith(path, ".json"))
    SLIM_THROW(ModelError, "'", path, "' is a Paddle 3.x PIR program (.json); only protobuf "
               "ProgramDesc (.pdmodel / __model__) is supported");
  std::string bytes = detail::readFileBytes(path, "program");
  return parsePaddleProgramBytes(bytes.data(), bytes.size(), path);
}

}  // namespace slim::models
