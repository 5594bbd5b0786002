// Image classification data from an HDF5 file with two datasets: `x`
// (N, C, H, W) or (N, H, W), float or uint8, and `y` (N) integer labels.
// The file is read through checkpoint/h5.h (slim::h5::readArray), so this
// layer makes no H5* calls of its own.
#pragma once

#include <string>

#include "trainer/data/dataset.h"

namespace slim::data {

/// Loads `x` and `y` from an HDF5 file into a float32 Dataset.
/// readArray hands uint8 data back as float32, so the stored type is not
/// known here: `pixel_scale` says how raw values map to [0, 1] (1/255 for
/// 0..255 pixels, 1 for data already in [0, 1]).
/// Throws DataError naming the file for missing datasets, bad ranks or
/// dtypes, and x/y sample counts that differ.
/// @param path        the .h5 file
/// @param pixel_scale multiplier applied before mean/std normalisation
/// @return the loaded data set (mean/std empty; the caller sets them)
Dataset loadHdf5(const std::string& path, float pixel_scale = 1.0f / 255.0f);

}  // namespace slim::data
