// Image files listed by an index: ACT's `data_dir` list files
// (`relative/path label` per line, act-reference §10) and torchvision's
// ImageFolder (one sub-folder per class, classes sorted by name -> 0..K-1).
// The index holds only the relative paths (one packed buffer) and labels, so
// a 1.28 M line list costs tens of MB; pixels are decoded when read() is
// called, through the image transform (image_transform.h).
#pragma once

#include <string>
#include <vector>

#include "trainer/data/image_transform.h"
#include "trainer/data/source.h"

namespace slim::data {

/// Reads an ACT list file. Blank lines are skipped; every other line must be
/// exactly `path label` (whitespace-separated, label an integer >= 0), else
/// DataError naming the list file and line. An empty list is an error too.
/// Image files are not touched until read() (a missing one is a
/// BadSampleError then, naming the list line and the path).
/// @param list_file the list (e.g. data_dir/train_list.txt)
/// @param root      folder the listed paths are relative to ("" = the list
///                  file's folder); absolute listed paths are used as they are
/// @param t         the transform read() applies (train or eval by seed)
SourcePtr openImageList(const std::string& list_file, const std::string& root,
                        const ImageTransform& t);

/// Scans an ImageFolder tree: `dir/<class>/**/<file>` for files with
/// torchvision's image extensions (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff
/// .webp, any case), files in sorted path order within each class.
/// @param dir     the split's root folder (e.g. imagenet/train)
/// @param t       the transform read() applies
/// @param classes in: the class names to use (the train split's), or empty
///                to take dir's sorted sub-folder names; out: the names used.
///                A sub-folder of `dir` that is not in a given list is an
///                error, as are an empty tree and a class folder with no
///                images (all naming the folder).
SourcePtr openImageFolder(const std::string& dir, const ImageTransform& t,
                          std::vector<std::string>* classes);

}  // namespace slim::data
