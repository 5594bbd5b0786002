// Segmentation data as PaddleSeg lists them: a list file with one sample per
// line, `image_path mask_path` (whitespace-separated, relative to `root`,
// PaddleSeg's dataset_root), masks as PNG with one class id per pixel
// (palette index or gray value; 255 = ignored). The image goes through the
// configured transform (image_transform.h); its mask through the same crop
// and flip, resampled with NEAREST so class ids stay class ids.
#pragma once

#include <string>

#include "trainer/data/image_transform.h"
#include "trainer/data/source.h"

namespace slim::data {

/// Reads a segmentation list. Blank lines are skipped; every other line must
/// be exactly `image mask`, else DataError naming the list file and line; an
/// empty list is an error too. Files are not touched until read():
/// missing or corrupt ones, a mask that is not a palette or gray PNG, and a
/// mask whose size differs from its image's are BadSampleErrors naming the
/// list line and the path. Mask values are checked against the model's
/// classes when they are scored (evaluation) or trained on (the loss).
/// @param list_file the list (e.g. train.txt)
/// @param root      folder the listed paths are relative to ("" = the list
///                  file's folder); absolute paths are used as they are
/// @param t         the image transform (train or eval by seed)
SourcePtr openSegList(const std::string& list_file, const std::string& root,
                      const ImageTransform& t);

}  // namespace slim::data
