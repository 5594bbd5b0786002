// HDF5 wrapper, part 1: error handling, the API lock, handles, files, groups,
// links, and reading data sets (readArray, row ranges). Writing datasets and
// attributes is in h5_io.cc.
#include "h5/h5.h"

#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "trainer/core/log.h"

namespace slim::h5 {

using ::slim::detail::str;

static_assert(std::is_same_v<hid_t, Id>, "slim::h5::Id must be hid_t");

bool libraryThreadSafe() {
  // Callable before the library is initialised; the answer never changes.
  static const bool safe = [] {
    hbool_t ts = 0;
    return H5is_library_threadsafe(&ts) >= 0 && ts;
  }();
  return safe;
}

namespace detail {

namespace {
// Leaked on purpose: Handles in static objects may close after main returns.
std::recursive_mutex& apiMutex() {
  static auto* m = new std::recursive_mutex;
  return *m;
}
std::atomic<uint64_t> row_bytes_read{0};
}  // namespace

ApiLock::ApiLock() {
  if (!libraryThreadSafe()) {
    apiMutex().lock();
    locked_ = true;
  }
}

ApiLock::~ApiLock() {
  if (locked_) apiMutex().unlock();
}

uint64_t rowBytesRead() { return row_bytes_read.load(std::memory_order_relaxed); }

void silenceAutoPrint() {
  // The automatic printer is per thread in thread-safe HDF5 builds.
  thread_local bool done = false;
  if (!done) {
    ApiLock lock;
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

namespace {
herr_t walkFrame(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n > 0) *out += "; ";
  *out += e->desc ? e->desc : "?";
  if (e->func_name) *out += str(" (", e->func_name, ")");
  return 0;
}
}  // namespace

std::string errorStack() {
  ApiLock lock;
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walkFrame, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? "no HDF5 error detail" : text;
}

int64_t check(int64_t rc, const char* call, const std::string& context) {
  if (rc >= 0) return rc;
  SLIM_THROW(CheckpointError, context, ": ", call, " failed: ", errorStack());
}

}  // namespace detail

using detail::silenceAutoPrint;

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    kind_ = o.kind_;
    o.id_ = -1;
  }
  return *this;
}

namespace {
herr_t closeId(Id id, Handle::Kind kind) {
  switch (kind) {
    case Handle::Kind::kFile: return H5Fclose(id);
    case Handle::Kind::kGroup: return H5Gclose(id);
    case Handle::Kind::kDataset: return H5Dclose(id);
    case Handle::Kind::kDataspace: return H5Sclose(id);
    case Handle::Kind::kAttribute: return H5Aclose(id);
    case Handle::Kind::kPropList: return H5Pclose(id);
    case Handle::Kind::kDatatype: return H5Tclose(id);
  }
  return -1;
}
}  // namespace

void Handle::reset() noexcept {
  if (id_ < 0) return;
  detail::ApiLock lock;
  silenceAutoPrint();
  const Id id = id_;
  id_ = -1;
  if (closeId(id, kind_) < 0) {
    try {
      log::warn("HDF5: closing id ", id, " failed: ", detail::errorStack());
    } catch (...) {
    }
  }
}

void Handle::close(const std::string& context) {
  if (id_ < 0) return;
  detail::ApiLock lock;
  silenceAutoPrint();
  const Id id = id_;
  id_ = -1;
  SLIM_H5_CHECK(closeId(id, kind_), context);
}

namespace detail {

void setLayoutAccess(const Handle& fapl, const std::string& ctx) {
  // 1.8 file format: checksummed superblock/object headers, dense attribute
  // storage (config_yaml may exceed 64 KiB); readable by HDF5 >= 1.8 and h5py.
  SLIM_H5_CHECK(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V18, H5F_LIBVER_V18), ctx);
}

Handle layoutCreateProps(const std::string& ctx) {
  Handle fcpl(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), ctx), Handle::Kind::kPropList);
  SLIM_H5_CHECK(H5Pset_obj_track_times(fcpl.id(), 0), ctx);
  return fcpl;
}

}  // namespace detail

using detail::layoutCreateProps;
using detail::setLayoutAccess;

Handle createMemoryFile(const std::string& name, size_t size_hint) {
  detail::ApiLock lock;
  silenceAutoPrint();
  const std::string ctx = str("creating in-memory HDF5 file for ", name);
  Handle fapl(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), ctx), Handle::Kind::kPropList);
  // Growth step of at least the expected size; backing_store=0: the caller
  // writes the image itself (so write errors and fault injection are exact).
  SLIM_H5_CHECK(H5Pset_fapl_core(fapl.id(), std::max<size_t>(size_t{1} << 20, size_hint), 0), ctx);
  setLayoutAccess(fapl, ctx);
  Handle fcpl = layoutCreateProps(ctx);
  // HDF5 refuses a second open file of the same name, even in memory: two
  // writers encoding the same step at once (two managers, one process) need
  // distinct names. The name is not stored in the image.
  static std::atomic<uint64_t> serial{0};
  const std::string unique = str(name, "#mem", serial.fetch_add(1));
  return Handle(SLIM_H5_CHECK(H5Fcreate(unique.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), ctx),
                Handle::Kind::kFile);
}

namespace {

uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/// Bob Jenkins' lookup3 hashlittle (public domain): HDF5's metadata checksum.
uint32_t lookup3(const uint8_t* k, size_t length) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeef + static_cast<uint32_t>(length);
  const auto word = [&](size_t i, size_t n) {
    uint32_t v = 0;
    for (size_t j = 0; j < n; ++j) v |= static_cast<uint32_t>(k[i + j]) << (8 * j);
    return v;
  };
  while (length > 12) {
    a += word(0, 4), b += word(4, 4), c += word(8, 4);
    a -= c, a ^= rotl(c, 4), c += b, b -= a, b ^= rotl(a, 6), a += c;
    c -= b, c ^= rotl(b, 8), b += a, a -= c, a ^= rotl(c, 16), c += b;
    b -= a, b ^= rotl(a, 19), a += c, c -= b, c ^= rotl(b, 4), b += a;
    length -= 12, k += 12;
  }
  if (length == 0) return c;
  a += word(0, std::min<size_t>(length, 4));
  if (length > 4) b += word(4, std::min<size_t>(length - 4, 4));
  if (length > 8) c += word(8, length - 8);
  c ^= b, c -= rotl(b, 14), a ^= c, a -= rotl(c, 11), b ^= a, b -= rotl(a, 25);
  c ^= b, c -= rotl(b, 16), a ^= c, a -= rotl(c, 4), b ^= a, b -= rotl(a, 14);
  c ^= b, c -= rotl(b, 24);
  return c;
}

}  // namespace

namespace detail {

// HDF5 1.10's H5Fget_file_image clears the superblock's status flags in the
// image but keeps the checksum computed with them set, so a v2/v3 superblock
// image fails to open ("incorrect metadata checksum"). Recompute it; when
// the library is right this rewrites the same value. `image` holds the
// first `size` bytes of the file.
void fixSuperblockChecksum(char* image, size_t size) {
  if (size < 48 || image[8] < 2 || image[8] > 3) return;
  const size_t offsets = static_cast<uint8_t>(image[9]);
  const size_t body = 12 + 4 * offsets;  // signature..root object header address
  if (size < body + 4) return;
  const uint32_t sum = lookup3(reinterpret_cast<const uint8_t*>(image), body);
  for (int i = 0; i < 4; ++i) image[body + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
}

}  // namespace detail

std::vector<char> fileImage(const Handle& file, const std::string& context) {
  detail::ApiLock lock;
  silenceAutoPrint();
  SLIM_H5_CHECK(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), context);
  const auto size = SLIM_H5_CHECK(H5Fget_file_image(file.id(), nullptr, 0), context);
  std::vector<char> image(static_cast<size_t>(size));
  SLIM_H5_CHECK(H5Fget_file_image(file.id(), image.data(), image.size()), context);
  detail::fixSuperblockChecksum(image.data(), image.size());
  return image;
}


Handle openFileReadOnly(const std::string& path) {
  detail::ApiLock lock;
  silenceAutoPrint();
  return Handle(SLIM_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                              "opening HDF5 file ", path),
                Handle::Kind::kFile);
}

Handle createGroup(const Handle& loc, const std::string& name) {
  detail::ApiLock lock;
  silenceAutoPrint();
  Handle gcpl(SLIM_H5_CHECK(H5Pcreate(H5P_GROUP_CREATE), "group ", name), Handle::Kind::kPropList);
  SLIM_H5_CHECK(H5Pset_obj_track_times(gcpl.id(), 0), "group ", name);
  return Handle(SLIM_H5_CHECK(H5Gcreate2(loc.id(), name.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                              "creating group ", name),
                Handle::Kind::kGroup);
}

Handle openGroup(const Handle& loc, const std::string& name) {
  detail::ApiLock lock;
  silenceAutoPrint();
  return Handle(SLIM_H5_CHECK(H5Gopen2(loc.id(), name.c_str(), H5P_DEFAULT), "opening group ", name),
                Handle::Kind::kGroup);
}

Handle openDataset(const Handle& loc, const std::string& name, size_t chunk_cache_bytes) {
  detail::ApiLock lock;
  silenceAutoPrint();
  const std::string ctx = str("opening dataset ", name);
  Handle dapl(SLIM_H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), ctx), Handle::Kind::kPropList);
  if (chunk_cache_bytes > 0)
    SLIM_H5_CHECK(H5Pset_chunk_cache(dapl.id(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, chunk_cache_bytes,
                                     H5D_CHUNK_CACHE_W0_DEFAULT), ctx);
  return Handle(SLIM_H5_CHECK(H5Dopen2(loc.id(), name.c_str(), dapl.id()), ctx),
                Handle::Kind::kDataset);
}

bool hasLink(const Handle& loc, const std::string& name) {
  detail::ApiLock lock;
  silenceAutoPrint();
  if (name.empty() || name.find('/') != std::string::npos) return false;
  return SLIM_H5_CHECK(H5Lexists(loc.id(), name.c_str(), H5P_DEFAULT), "probing link ", name) > 0;
}

namespace {
herr_t collectName(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> listLinks(const Handle& group) {
  detail::ApiLock lock;
  silenceAutoPrint();
  std::vector<std::string> names;
  SLIM_H5_CHECK(H5Literate(group.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collectName, &names),
                "listing group members");
  return names;
}

bool isDataset(const Handle& loc, const std::string& name) {
  detail::ApiLock lock;
  silenceAutoPrint();
  const hid_t obj = SLIM_H5_CHECK(H5Oopen(loc.id(), name.c_str(), H5P_DEFAULT), "opening ", name);
  const H5I_type_t type = H5Iget_type(obj);
  SLIM_H5_CHECK(H5Oclose(obj), "closing ", name);
  return type == H5I_DATASET;
}

Tensor readArray(const std::string& file, const std::string& dataset) {
  detail::ApiLock lock;
  try {
    Handle f = openFileReadOnly(file);
    Handle d = openDataset(f, dataset);
    const DatasetInfo info = datasetInfo(d);
    const bool is_float = info.is_float || info.elem == Elem::kU8;
    const bool is_int = info.is_integer && !is_float;
    if (!is_float && !is_int)
      SLIM_THROW(DataError, "dataset has an unsupported element type (want a float or integer array)");
    Tensor t(info.shape, is_float ? DType::kF32 : DType::kI64);
    readDataset(d, is_float ? Elem::kF32 : Elem::kI64, t.raw(), t.bytes());
    return t;
  } catch (const Error& e) {
    SLIM_THROW(DataError, "cannot read dataset '", dataset, "' of HDF5 file ", file, ": ", e.what());
  }
}

namespace {


size_t sizeOf(Elem e) {
  switch (e) {
    case Elem::kI8: case Elem::kU8: return 1;
    case Elem::kF32: case Elem::kI32: return 4;
    default: return 8;
  }
}

}  // namespace

StoredType storedType(const Handle& dset) {
  detail::ApiLock lock;
  silenceAutoPrint();
  Handle type(SLIM_H5_CHECK(H5Dget_type(dset.id()), "dataset type"), Handle::Kind::kDatatype);
  const auto cls = static_cast<H5T_class_t>(SLIM_H5_CHECK(H5Tget_class(type.id()), "dataset type class"));
  StoredType t;
  t.bytes = H5Tget_size(type.id());
  const std::string bits = std::to_string(8 * t.bytes);
  switch (cls) {
    case H5T_INTEGER:
      t.cls = StoredType::Class::kInteger;
      t.is_signed = SLIM_H5_CHECK(H5Tget_sign(type.id()), "dataset type sign") == H5T_SGN_2;
      t.name = (t.is_signed ? "int" : "uint") + bits;
      break;
    case H5T_FLOAT:
      t.cls = StoredType::Class::kFloat;
      t.name = "float" + bits;
      break;
    case H5T_STRING: t.name = "string"; break;
    case H5T_COMPOUND: t.name = "compound"; break;
    case H5T_ENUM: t.name = "enum"; break;
    case H5T_ARRAY: t.name = "array"; break;
    default: t.name = str("HDF5 type class ", static_cast<int>(cls)); break;
  }
  return t;
}

void readRows(const Handle& dset, int64_t first, int64_t count, Elem mem, void* out, size_t bytes) {
  detail::ApiLock lock;
  silenceAutoPrint();
  Handle space(SLIM_H5_CHECK(H5Dget_space(dset.id()), "dataset space"), Handle::Kind::kDataspace);
  const int nd = static_cast<int>(SLIM_H5_CHECK(H5Sget_simple_extent_ndims(space.id()), "dataset rank"));
  if (nd < 1) SLIM_THROW(CheckpointError, "reading rows of a scalar dataset");
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  SLIM_H5_CHECK(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "dataset dims");
  const auto rows = static_cast<int64_t>(dims[0]);
  if (first < 0 || count < 0 || first > rows - count)
    SLIM_THROW(CheckpointError, "rows [", first, ", ", first + count, ") are outside a dataset of ",
               rows, " rows");
  size_t per_row = sizeOf(mem);
  for (int i = 1; i < nd; ++i) per_row *= static_cast<size_t>(dims[static_cast<size_t>(i)]);
  const size_t want = per_row * static_cast<size_t>(count);
  SLIM_ENFORCE_EQ(want, bytes, "reading ", count, " rows as ", elemName(mem));
  if (want == 0) return;
  // File selection: the hyperslab {first, 0, ...} of extent {count, dims[1:]};
  // memory: a dense array of that extent.
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  const std::string ctx = str("reading rows [", first, ", ", first + count, ") as ", elemName(mem));
  SLIM_H5_CHECK(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr),
                ctx);
  Handle mspace(SLIM_H5_CHECK(H5Screate_simple(nd, extent.data(), nullptr), ctx), Handle::Kind::kDataspace);
  SLIM_H5_CHECK(H5Dread(dset.id(), detail::memType(mem), mspace.id(), space.id(), H5P_DEFAULT, out), ctx);
  detail::row_bytes_read.fetch_add(want, std::memory_order_relaxed);
}

}  // namespace slim::h5
