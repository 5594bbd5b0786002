// HDF5 wrapper, part 2: datasets (chunked + Fletcher32) and scalar attributes
// (fixed-width integers, doubles, fixed-length strings).
#include <hdf5.h>

#include <algorithm>

#include "h5/h5.h"

namespace slim::h5 {

using ::slim::detail::str;

using detail::silenceAutoPrint;

const char* elemName(Elem e) {
  switch (e) {
    case Elem::kF32: return "float32";
    case Elem::kF64: return "float64";
    case Elem::kI8: return "int8";
    case Elem::kU8: return "uint8";
    case Elem::kI32: return "int32";
    case Elem::kI64: return "int64";
    case Elem::kU64: return "uint64";
    case Elem::kOther: return "other";
  }
  return "?";
}

Elem elemOf(DType t) {
  switch (t) {
    case DType::kF32: return Elem::kF32;
    case DType::kI64: return Elem::kI64;
    case DType::kU8: return Elem::kU8;
    case DType::kI8: return Elem::kI8;
    case DType::kI32: return Elem::kI32;
  }
  return Elem::kOther;
}

namespace {

size_t elemSize(Elem e) {
  switch (e) {
    case Elem::kI8: case Elem::kU8: return 1;
    case Elem::kF32: case Elem::kI32: return 4;
    default: return 8;
  }
}

/// On-disk type: little-endian fixed width, whatever the host is.
hid_t fileType(Elem e) {
  switch (e) {
    case Elem::kF32: return H5T_IEEE_F32LE;
    case Elem::kF64: return H5T_IEEE_F64LE;
    case Elem::kI8: return H5T_STD_I8LE;
    case Elem::kU8: return H5T_STD_U8LE;
    case Elem::kI32: return H5T_STD_I32LE;
    case Elem::kI64: return H5T_STD_I64LE;
    case Elem::kU64: return H5T_STD_U64LE;
    case Elem::kOther: break;
  }
  SLIM_THROW(CheckpointError, "no HDF5 type for element kind 'other'");
}


/// Classifies a stored type into Elem plus its class flags.
void classify(hid_t type, DatasetInfo& info) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  info.elem = Elem::kOther;
  if (cls == H5T_FLOAT) {
    info.is_float = true;
    if (size == 4) info.elem = Elem::kF32;
    if (size == 8) info.elem = Elem::kF64;
  } else if (cls == H5T_INTEGER) {
    info.is_integer = true;
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 1) info.elem = is_signed ? Elem::kI8 : Elem::kU8;
    if (size == 4 && is_signed) info.elem = Elem::kI32;
    if (size == 8) info.elem = is_signed ? Elem::kI64 : Elem::kU64;
  }
}

/// Chunk dims of about 1 MiB: shrink leading dims first (row-major friendly).
std::vector<hsize_t> chunkDims(const Shape& shape, size_t esize) {
  constexpr size_t kTarget = size_t{1} << 20;
  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  for (size_t i = 0; i < chunk.size(); ++i) {
    size_t rest = esize;
    for (size_t j = i + 1; j < chunk.size(); ++j) rest *= chunk[j];
    if (rest * chunk[i] <= kTarget) break;
    chunk[i] = std::max<hsize_t>(1, kTarget / rest);
  }
  return chunk;
}

Handle dataspaceFor(const Shape& shape, const std::string& ctx) {
  if (shape.empty())
    return Handle(SLIM_H5_CHECK(H5Screate(H5S_SCALAR), ctx), Handle::Kind::kDataspace);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(SLIM_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), ctx),
                Handle::Kind::kDataspace);
}

}  // namespace

namespace detail {

Id memType(Elem e) {
  switch (e) {
    case Elem::kF32: return H5T_NATIVE_FLOAT;
    case Elem::kF64: return H5T_NATIVE_DOUBLE;
    case Elem::kI8: return H5T_NATIVE_INT8;
    case Elem::kU8: return H5T_NATIVE_UINT8;
    case Elem::kI32: return H5T_NATIVE_INT32;
    case Elem::kI64: return H5T_NATIVE_INT64;
    case Elem::kU64: return H5T_NATIVE_UINT64;
    case Elem::kOther: break;
  }
  SLIM_THROW(CheckpointError, "no HDF5 type for element kind 'other'");
}

}  // namespace detail

void writeDataset(const Handle& loc, const std::string& name, Elem elem,
                  const Shape& shape, const void* data) {
  silenceAutoPrint();
  const std::string ctx = str("writing dataset ", name, " (", elemName(elem), " ", shapeStr(shape), ")");
  for (int64_t d : shape) SLIM_ENFORCE_GE(d, 0, ctx);
  const int64_t numel = numelOf(shape);
  Handle space = dataspaceFor(shape, ctx);
  Handle dcpl(SLIM_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), ctx), Handle::Kind::kPropList);
  SLIM_H5_CHECK(H5Pset_obj_track_times(dcpl.id(), 0), ctx);
  if (numel > 0 && !shape.empty()) {
    const auto chunk = chunkDims(shape, elemSize(elem));
    SLIM_H5_CHECK(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), ctx);
    SLIM_H5_CHECK(H5Pset_fletcher32(dcpl.id()), ctx);
  } else {
    // Scalars and empty arrays live in the (checksummed) object header.
    SLIM_H5_CHECK(H5Pset_layout(dcpl.id(), H5D_COMPACT), ctx);
  }
  Handle dset(SLIM_H5_CHECK(H5Dcreate2(loc.id(), name.c_str(), fileType(elem), space.id(),
                                       H5P_DEFAULT, dcpl.id(), H5P_DEFAULT), ctx),
              Handle::Kind::kDataset);
  if (numel > 0)
    SLIM_H5_CHECK(H5Dwrite(dset.id(), detail::memType(elem), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), ctx);
  dset.close(ctx);
}

DatasetInfo datasetInfo(const Handle& dset) {
  silenceAutoPrint();
  DatasetInfo info;
  Handle type(SLIM_H5_CHECK(H5Dget_type(dset.id()), "dataset type"), Handle::Kind::kDatatype);
  classify(type.id(), info);
  Handle space(SLIM_H5_CHECK(H5Dget_space(dset.id()), "dataset space"), Handle::Kind::kDataspace);
  const int nd = static_cast<int>(SLIM_H5_CHECK(H5Sget_simple_extent_ndims(space.id()), "dataset rank"));
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  if (nd > 0) SLIM_H5_CHECK(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "dataset dims");
  info.shape.assign(dims.begin(), dims.end());
  Handle dcpl(SLIM_H5_CHECK(H5Dget_create_plist(dset.id()), "dataset plist"), Handle::Kind::kPropList);
  unsigned flags = 0;
  size_t nelmts = 0;
  info.fletcher32 = H5Pget_filter_by_id2(dcpl.id(), H5Z_FILTER_FLETCHER32, &flags, &nelmts,
                                         nullptr, 0, nullptr, nullptr) >= 0;
  H5Eclear2(H5E_DEFAULT);  // the probe above fails when the filter is absent
  return info;
}

void readDataset(const Handle& dset, Elem mem, void* out, size_t bytes) {
  silenceAutoPrint();
  const DatasetInfo info = datasetInfo(dset);
  const size_t want = static_cast<size_t>(numelOf(info.shape)) * elemSize(mem);
  SLIM_ENFORCE_EQ(want, bytes, "reading dataset of shape ", shapeStr(info.shape), " as ", elemName(mem));
  if (want == 0) return;
  SLIM_H5_CHECK(H5Dread(dset.id(), detail::memType(mem), H5S_ALL, H5S_ALL, H5P_DEFAULT, out),
                "reading ", elemName(info.elem), " data of shape ", shapeStr(info.shape));
}

int64_t datasetOffset(const Handle& dset) {
  silenceAutoPrint();
  const haddr_t addr = H5Dget_offset(dset.id());
  H5Eclear2(H5E_DEFAULT);
  if (addr != HADDR_UNDEF) return static_cast<int64_t>(addr);
  haddr_t chunk_addr = HADDR_UNDEF;
  hsize_t size = 0;
  unsigned mask = 0;
  // HDF5 1.10 wants the dataset's own dataspace here, not H5S_ALL.
  const hid_t space = H5Dget_space(dset.id());
  const herr_t rc = space < 0 ? -1 : H5Dget_chunk_info(dset.id(), space, 0, nullptr, &mask, &chunk_addr, &size);
  if (space >= 0) H5Sclose(space);
  if (rc < 0 ||
      chunk_addr == HADDR_UNDEF) {
    H5Eclear2(H5E_DEFAULT);
    return -1;
  }
  return static_cast<int64_t>(chunk_addr);
}

// --- attributes -------------------------------------------------------------

namespace {

void writeScalarAttr(const Handle& obj, const std::string& name, hid_t ftype, hid_t mtype,
                     const void* v) {
  silenceAutoPrint();
  const std::string ctx = str("writing attribute ", name);
  Handle space(SLIM_H5_CHECK(H5Screate(H5S_SCALAR), ctx), Handle::Kind::kDataspace);
  Handle attr(SLIM_H5_CHECK(H5Acreate2(obj.id(), name.c_str(), ftype, space.id(), H5P_DEFAULT, H5P_DEFAULT), ctx),
              Handle::Kind::kAttribute);
  SLIM_H5_CHECK(H5Awrite(attr.id(), mtype, v), ctx);
  attr.close(ctx);
}

Handle openAttr(const Handle& obj, const std::string& name) {
  silenceAutoPrint();
  if (!hasAttr(obj, name)) SLIM_THROW(CheckpointError, "attribute '", name, "' is missing");
  return Handle(SLIM_H5_CHECK(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), "opening attribute ", name),
                Handle::Kind::kAttribute);
}

Handle attrType(const Handle& attr, const std::string& name) {
  return Handle(SLIM_H5_CHECK(H5Aget_type(attr.id()), "attribute ", name), Handle::Kind::kDatatype);
}

void expectClass(const Handle& type, H5T_class_t want, const char* want_name, const std::string& name) {
  const H5T_class_t found = H5Tget_class(type.id());
  if (found != want)
    SLIM_THROW(CheckpointError, "attribute '", name, "': expected ", want_name, ", found HDF5 type class ",
               static_cast<int>(found));
}

herr_t collectAttr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

void writeAttr(const Handle& obj, const std::string& name, int64_t v) {
  writeScalarAttr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
void writeAttr(const Handle& obj, const std::string& name, uint64_t v) {
  writeScalarAttr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}
void writeAttr(const Handle& obj, const std::string& name, double v) {
  writeScalarAttr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void writeAttr(const Handle& obj, const std::string& name, const std::string& v) {
  silenceAutoPrint();
  const std::string ctx = str("writing string attribute ", name);
  Handle type(SLIM_H5_CHECK(H5Tcopy(H5T_C_S1), ctx), Handle::Kind::kDatatype);
  SLIM_H5_CHECK(H5Tset_size(type.id(), std::max<size_t>(1, v.size())), ctx);
  SLIM_H5_CHECK(H5Tset_strpad(type.id(), H5T_STR_NULLPAD), ctx);
  SLIM_H5_CHECK(H5Tset_cset(type.id(), H5T_CSET_UTF8), ctx);
  std::string buf = v.empty() ? std::string(1, '\0') : v;
  writeScalarAttr(obj, name, type.id(), type.id(), buf.data());
}

bool hasAttr(const Handle& obj, const std::string& name) {
  silenceAutoPrint();
  return SLIM_H5_CHECK(H5Aexists(obj.id(), name.c_str()), "probing attribute ", name) > 0;
}

std::vector<std::string> listAttrs(const Handle& obj) {
  silenceAutoPrint();
  std::vector<std::string> names;
  hsize_t idx = 0;
  SLIM_H5_CHECK(H5Aiterate2(obj.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collectAttr, &names),
                "listing attributes");
  return names;
}

Elem attrElem(const Handle& obj, const std::string& name) {
  Handle attr = openAttr(obj, name);
  Handle type = attrType(attr, name);
  DatasetInfo info;
  classify(type.id(), info);
  if (info.is_float) return Elem::kF64;
  if (info.is_integer) return info.elem == Elem::kU64 ? Elem::kU64 : Elem::kI64;
  return Elem::kOther;
}

bool isStringAttr(const Handle& obj, const std::string& name) {
  Handle attr = openAttr(obj, name);
  return H5Tget_class(attrType(attr, name).id()) == H5T_STRING;
}

namespace {

// A scalar attribute of class `cls` (`what` names it in errors) read as
// `mem_type`, HDF5 converting.
template <class T>
T readScalarAttr(const Handle& obj, const std::string& name, H5T_class_t cls, const char* what,
                 hid_t mem_type) {
  Handle attr = openAttr(obj, name);
  expectClass(attrType(attr, name), cls, what, name);
  T v = 0;
  SLIM_H5_CHECK(H5Aread(attr.id(), mem_type, &v), "reading attribute ", name);
  return v;
}

}  // namespace

int64_t readAttrI64(const Handle& obj, const std::string& name) {
  return readScalarAttr<int64_t>(obj, name, H5T_INTEGER, "an integer", H5T_NATIVE_INT64);
}

uint64_t readAttrU64(const Handle& obj, const std::string& name) {
  return readScalarAttr<uint64_t>(obj, name, H5T_INTEGER, "an integer", H5T_NATIVE_UINT64);
}

double readAttrF64(const Handle& obj, const std::string& name) {
  return readScalarAttr<double>(obj, name, H5T_FLOAT, "a float", H5T_NATIVE_DOUBLE);
}

std::string readAttrStr(const Handle& obj, const std::string& name) {
  Handle attr = openAttr(obj, name);
  Handle type = attrType(attr, name);
  expectClass(type, H5T_STRING, "a string", name);
  const std::string ctx = str("reading attribute ", name);
  if (SLIM_H5_CHECK(H5Tis_variable_str(type.id()), ctx) > 0) {
    // Variable-length strings (as h5py writes them) are accepted on read.
    char* p = nullptr;
    SLIM_H5_CHECK(H5Aread(attr.id(), type.id(), &p), ctx);
    std::string v = p ? p : "";
    H5free_memory(p);
    return v;
  }
  std::string buf(H5Tget_size(type.id()), '\0');
  SLIM_H5_CHECK(H5Aread(attr.id(), type.id(), buf.data()), ctx);
  return buf.substr(0, buf.find('\0'));
}

}  // namespace slim::h5
