// Descriptor-guided wire-format scan (see wire_scan.h).
#include "trainer/models/onnx/wire_scan.h"

#include <map>

#include <google/protobuf/descriptor.h>

#include "trainer/core/error.h"

namespace slim::models {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

constexpr int kMaxDepth = 100;  // protobuf's own recursion limit

bool readVarint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Element size of a packed fixed-width field, 0 for varint-encoded ones.
int fixedSize(FieldDescriptor::Type t) {
  switch (t) {
    case FieldDescriptor::TYPE_FLOAT: case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return 4;
    case FieldDescriptor::TYPE_DOUBLE: case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return 8;
    default:
      return 0;
  }
}

class Scanner {
 public:
  explicit Scanner(const uint8_t* base) : base_(base) {}

  // Scans [p, end) as `type`; true when a fault was recorded in `f`.
  bool message(const uint8_t* p, const uint8_t* end, const Descriptor* type,
               const std::string& path, int depth, WireFault& f) {
    std::map<int, int> seen;  // repeated-field indices for the path
    while (p < end) {
      const uint8_t* start = p;
      uint64_t tag = 0;
      if (!readVarint(p, end, tag)) return fail(f, start, path, "a truncated field tag");
      const int number = static_cast<int>(tag >> 3);
      const int wire = static_cast<int>(tag & 7);
      const FieldDescriptor* fd = type != nullptr ? type->FindFieldByNumber(number) : nullptr;
      std::string name = fd ? fd->name() : "#" + std::to_string(number);
      if (fd && fd->is_repeated()) name += "[" + std::to_string(seen[number]++) + "]";
      const std::string here = path.empty() ? name : path + "." + name;
      if (number == 0) return fail(f, start, path, "field number 0");
      uint64_t v = 0;
      switch (wire) {
        case 0:
          if (!readVarint(p, end, v)) return fail(f, start, here, "a truncated varint");
          break;
        case 1:
        case 5: {
          const int64_t n = wire == 1 ? 8 : 4;
          if (end - p < n)
            return fail(f, start, here, ::slim::detail::str("a truncated ", n, "-byte value (",
                                                    end - p, " bytes left)"));
          p += n;
          break;
        }
        case 2: {
          if (!readVarint(p, end, v)) return fail(f, start, here, "a truncated length");
          if (v > static_cast<uint64_t>(end - p))
            return fail(f, start, here,
                        ::slim::detail::str("a length of ", v, " bytes running past the end of ",
                                    path.empty() ? "the file" : path, " (", end - p,
                                    " bytes left: truncated or corrupt)"));
          const uint8_t* body_end = p + v;
          if (fd && fd->type() == FieldDescriptor::TYPE_MESSAGE) {
            if (depth + 1 >= kMaxDepth)
              return fail(f, start, here, "messages nested deeper than 100 levels");
            if (message(p, body_end, fd->message_type(), here, depth + 1, f)) return true;
          } else if (fd && fd->is_packable() && !packed(p, body_end, fd, here, f)) {
            return true;
          }
          p = body_end;
          break;
        }
        default:
          return fail(f, start, here, ::slim::detail::str("invalid wire type ", wire));
      }
    }
    return false;
  }

 private:
  // A packed repeated scalar: whole varints or a multiple of the width.
  bool packed(const uint8_t* p, const uint8_t* end, const FieldDescriptor* fd,
              const std::string& here, WireFault& f) {
    const int width = fixedSize(fd->type());
    if (width > 0) {
      if ((end - p) % width == 0) return true;
      fail(f, p, here,
           ::slim::detail::str("a packed array of ", end - p, " bytes, not a multiple of ", width));
      return false;
    }
    while (p < end) {
      const uint8_t* at = p;
      uint64_t v = 0;
      if (!readVarint(p, end, v)) {
        fail(f, at, here, "a truncated varint in a packed array");
        return false;
      }
    }
    return true;
  }

  bool fail(WireFault& f, const uint8_t* at, const std::string& field, const std::string& why) {
    f.offset = at - base_;
    f.field = field.empty() ? "(top level)" : field;
    f.why = why;
    return true;
  }

  const uint8_t* base_;
};

}  // namespace

WireFault findWireFault(const std::string& bytes, const Descriptor* type) {
  WireFault f;
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  Scanner(base).message(base, base + bytes.size(), type, "", 0, f);
  return f;
}

std::string describeWireFault(const WireFault& f, size_t size) {
  if (f.offset < 0) return "";
  return ::slim::detail::str(f.why, " in field ", f.field, " at byte offset ", f.offset, " of ",
                             size);
}

}  // namespace slim::models
