// HDF5 (x, y) data sets on top of slim::h5::readArray.
#include "trainer/data/h5_dataset.h"

#if SLIM_DATA_HAVE_H5
#include "checkpoint/h5.h"
#endif

namespace slim::data {

#if !SLIM_DATA_HAVE_H5
// Built without the checkpoint layer's HDF5 reader (see CMakeLists.txt).
Dataset loadHdf5(const std::string& path, float) {
  SLIM_THROW(DataError, path, ": HDF5 data sets are not available in this ",
             "build (checkpoint/h5.h was missing at configure time)");
}
#else
Dataset loadHdf5(const std::string& path, float pixel_scale) {
  Dataset d;
  d.source = path;
  d.pixel_scale = pixel_scale;
  Tensor x, y;
  // readArray reports a missing file or dataset; add which one we wanted.
  try {
    x = h5::readArray(path, "x");
    y = h5::readArray(path, "y");
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    SLIM_THROW(DataError, path, ": cannot read data set (needs datasets 'x' ",
               "(N,C,H,W) or (N,H,W) and 'y' (N)): ", e.what());
  }
  if (x.dtype() != DType::kF32)
    SLIM_THROW(DataError, path, ": dataset 'x' must be float or uint8, got ",
               dtypeName(x.dtype()));
  if (x.ndim() == 3) x = x.reshaped({x.dim(0), 1, x.dim(1), x.dim(2)});
  if (x.ndim() != 4)
    SLIM_THROW(DataError, path, ": dataset 'x' must be (N,C,H,W) or (N,H,W), got ",
               shapeStr(x.shape()));
  if (y.dtype() != DType::kI64)
    SLIM_THROW(DataError, path, ": dataset 'y' must hold integer labels, got ",
               dtypeName(y.dtype()));
  if (y.ndim() == 2 && y.dim(1) == 1) y = y.reshaped({y.dim(0)});
  if (y.ndim() != 1)
    SLIM_THROW(DataError, path, ": dataset 'y' must be (N), got ",
               shapeStr(y.shape()));
  if (y.numel() != x.dim(0))
    SLIM_THROW(DataError, path, ": 'x' holds ", x.dim(0), " samples but 'y' holds ",
               y.numel(), " labels");
  d.images = x;
  d.labels = y;
  validate(d);
  return d;
}
#endif

}  // namespace slim::data
