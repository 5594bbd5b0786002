// On-disk schema of slimtrain checkpoints (one HDF5 file per checkpoint).
//
//   /                      attributes (scalar, fixed width, little-endian):
//     magic          string  "slimtrain-ckpt"
//     format_version int64   kFormatVersion (see history below)
//     step           int64   iterations completed when the state was taken
//     epoch          int64   current epoch (0-based)
//     sample_offset  int64   global samples of this epoch already consumed
//     world_size     int64   ranks that wrote it (resuming on another size works)
//     seed           uint64  the run's base seed
//     config_yaml    string  the full resolved config
//     created_unix   int64   wall-clock seconds (the only non-deterministic field)
//     <group>_datasets int64 number of datasets in /<group> (for each group;
//                            a missing dataset fails loading)
//     writer         string  "slimtrain <version>" (informational, optional)
//   /params /buffers /masks /quant /optimizer /schedule /rng
//                          seven groups, always present (possibly empty); each
//                          holds only datasets (no subgroups) and any number of
//                          group attributes (int64, float64 or string).
//   /<group>/<link>        one dataset per tensor or uint64 array:
//     type    float32 | int64 | uint8 | int8 | int32 tensor, or uint64 words
//     shape   the tensor shape (scalar dataspace for shape [])
//     layout  chunked (~1 MiB chunks) + Fletcher32 when non-empty with rank >= 1;
//             compact (inside the checksummed object header) otherwise
//     attr    name (string): the original name; <link> = escapeName(name)
//
// Names are arbitrary non-empty strings (ONNX names like "/layer1/Conv_output_0"
// included). HDF5 forbids '/' in link names, so escapeName percent-encodes '%'
// -> "%25", '/' -> "%2F", NUL -> "%00" and a leading '.' -> "%2E"; everything
// else is kept, so h5dump/h5py show e.g. "%2Flayer1%2FConv_output_0". Group
// attribute names are escaped the same way (without a name attribute).
// Files use the HDF5 1.8 format (superblock v2, object header v2: metadata is
// checksummed) with object timestamps off, so equal states give equal bytes
// apart from created_unix.
//
// Version history:
//   1  first format (slimtrain 0.1).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace slim::checkpoint {

inline constexpr const char* kMagic = "slimtrain-ckpt";
inline constexpr int64_t kFormatVersion = 1;

/// The seven groups, in schema order.
inline constexpr std::array<const char*, 7> kGroupNames = {
    "params", "buffers", "masks", "quant", "optimizer", "schedule", "rng"};

/// Dataset attribute holding the original (unescaped) name.
inline constexpr const char* kNameAttr = "name";

/// Reversible encoding of a tensor name into an HDF5 link name.
/// @param name any non-empty string
/// @return the link name (no '/', never "." )
/// @throws CheckpointError when `name` is empty
std::string escapeName(const std::string& name);

/// Inverse of escapeName.
/// @throws CheckpointError on a malformed escape sequence
std::string unescapeName(const std::string& link);

}  // namespace slim::checkpoint
