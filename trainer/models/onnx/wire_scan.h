// Locating the damage in a protobuf file that failed to parse: protobuf's
// parser only says "failed"; this walks the wire format guided by the
// message's descriptor and names the first malformed field and its offset.
#pragma once

#include <cstdint>
#include <string>

namespace google::protobuf {
class Descriptor;
}

namespace slim::models {

struct WireFault {
  int64_t offset = -1;  ///< byte offset of the malformed field's tag; -1: none found
  std::string field;    ///< path of the field, e.g. graph.node[3].attribute[0].t
  std::string why;      ///< what is wrong with it
};

/// Scans `bytes` as a serialized `type` message. Returns the first fault
/// (truncated tag, varint or value, a length running past its enclosing
/// message, a bad wire type, a malformed packed array), or offset -1.
WireFault findWireFault(const std::string& bytes, const google::protobuf::Descriptor* type);

/// "<why> in field <field> at byte offset <offset> of <size>" (or "" when
/// `f` found nothing).
std::string describeWireFault(const WireFault& f, size_t size);

}  // namespace slim::models
