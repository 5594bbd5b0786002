// IDX files (MNIST, Fashion-MNIST): a big-endian header — two zero bytes, a
// type byte (0x08 = unsigned byte), the number of dimensions — then one
// big-endian int32 per dimension and the raw data. Images are magic
// 0x00000803 (N, H, W), labels 0x00000801 (N). Files ending in .gz and plain
// files are both read through zlib (gzread reads uncompressed files as is).
#pragma once

#include <string>

#include "trainer/data/dataset.h"

namespace slim::data {

/// IDX magic numbers (type 0x08 unsigned byte, 3 resp. 1 dimensions).
constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;

/// Loads an IDX image file and its label file into a Dataset with images
/// (N, 1, H, W) uint8, labels (N) int64, pixel_scale 1/255 and no mean/std.
/// Throws DataError naming the file for: a file that cannot be opened, a
/// wrong magic (expected vs found), a truncated file (byte offset where the
/// data ended), corrupt gzip data, or image/label counts that differ.
/// @param images_path path of the idx3 images file (.gz or plain)
/// @param labels_path path of the idx1 labels file (.gz or plain)
/// @return the loaded data set
Dataset loadIdx(const std::string& images_path, const std::string& labels_path);

}  // namespace slim::data
