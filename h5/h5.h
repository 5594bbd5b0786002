// RAII wrapper over the HDF5 C API: the only place in slimtrain that calls H5*.
// Every call goes through SLIM_H5_CHECK, which throws CheckpointError with the
// caller's context and the HDF5 error stack text; HDF5's own automatic stderr
// printing is switched off. This header does not include <hdf5.h>, so layers
// that only need readArray() or readRows() (trainer/data) never see the C API.
//
// Threads: data-loading workers read rows while the main thread writes a
// checkpoint, all through this wrapper. Debian's libhdf5 (1.10.8 serial) is
// built thread-safe (H5is_library_threadsafe: yes), so HDF5 serialises its
// own API calls and keeps one error stack per thread. For a library built
// without thread safety, detail::ApiLock takes one process-wide recursive
// mutex around every SLIM_H5_CHECK call and around each public function of
// h5.cc (Handle::reset/close included); with a thread-safe library it does
// nothing. Ids may be shared between threads either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "trainer/core/error.h"
#include "trainer/core/tensor.h"

namespace slim::h5 {

/// HDF5 object id (hid_t is int64_t since HDF5 1.10; checked in h5.cc).
using Id = int64_t;

/// Reads a whole dataset of an HDF5 file into a Tensor of the same shape:
/// float32 for floating-point and uint8 data (uint8 values are converted, not
/// scaled: 0..255), int64 for every other integer type.
/// @param file path of the HDF5 file
/// @param dataset dataset path inside the file, e.g. "x" or "/train/y"
/// @return a freshly allocated tensor
/// @throws DataError naming file and dataset, with the HDF5 error text
Tensor readArray(const std::string& file, const std::string& dataset);

/// Owns one HDF5 id and closes it with the function matching its kind.
/// Move-only; the destructor never throws (a failed close is logged).
class Handle {
 public:
  enum class Kind : uint8_t { kFile, kGroup, kDataset, kDataspace, kAttribute, kPropList, kDatatype };

  Handle() = default;
  /// Takes ownership of `id` (which must be valid, i.e. >= 0).
  Handle(Id id, Kind kind) : id_(id), kind_(kind) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), kind_(o.kind_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  /// The raw id for H5* calls (only inside checkpoint/).
  Id id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; errors are logged, never thrown.
  void reset() noexcept;
  /// Closes now and throws CheckpointError if HDF5 reports a failure (use this
  /// for files being written, where a failed close means lost data).
  void close(const std::string& context);

 private:
  Id id_ = -1;
  Kind kind_ = Kind::kFile;
};

/// Element types stored on disk (little-endian, fixed width).
enum class Elem : uint8_t { kF32, kF64, kI8, kU8, kI32, kI64, kU64, kOther };

/// "float32", "uint64", ... for messages.
const char* elemName(Elem e);
/// The Elem matching a tensor dtype.
Elem elemOf(DType t);

/// Shape and element type of a dataset as stored.
struct DatasetInfo {
  Elem elem = Elem::kOther;  // exact type when it is one of Elem, else kOther
  bool is_integer = false;   // HDF5 integer class (any width and sign)
  bool is_float = false;     // HDF5 float class (any width)
  Shape shape;               // {} for a scalar dataspace
  bool fletcher32 = false;
};

// --- files and groups -------------------------------------------------------

/// Creates an in-memory file (core driver, no backing store) using the
/// checkpoint layout settings (HDF5 1.8+ format so metadata is checksummed,
/// no object timestamps so identical content gives identical bytes).
/// @param name_for_messages the destination path, named in errors
/// @param size_hint expected file size in bytes; the image grows in steps of
///        max(1 MiB, size_hint) so large states avoid repeated reallocation
Handle createMemoryFile(const std::string& name_for_messages, size_t size_hint = 0);
/// The bytes of an in-memory (or any open) file, after flushing it; the
/// superblock checksum is recomputed (works around HDF5 1.10, see h5.cc).
/// @param context named in errors
std::vector<char> fileImage(const Handle& file, const std::string& context);

/// Destination of a StreamFile's bytes (e.g. a temporary file). Calls come
/// from inside HDF5: exceptions are caught there, reported to the StreamFile
/// and rethrown by it (see StreamFile::rethrowSinkError).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  /// Writes `n` bytes at `offset` (the file grows as needed, gaps read as 0).
  virtual void writeAt(uint64_t offset, const void* data, size_t n) = 0;
  /// Reads `n` bytes at `offset`; bytes never written read as 0.
  virtual void readAt(uint64_t offset, void* out, size_t n) = 0;
  /// Makes the file exactly `size` bytes long (zero-extending or cutting).
  virtual void resize(uint64_t size) = 0;
  /// Called by StreamFile::finish() when a call above threw (`first`), with
  /// the size the file has once complete: throws the error to report (e.g.
  /// naming that size); by default `first` itself.
  [[noreturn]] virtual void reportFailure(uint64_t size, std::exception_ptr first) {
    (void)size;
    std::rethrow_exception(first);
  }
};

/// A file with the checkpoint layout settings of createMemoryFile() whose
/// bytes go straight to a ByteSink as HDF5 writes them, so no image of the
/// whole file is held in memory. After finish() the sink holds exactly the
/// bytes fileImage() gives for the same writes to a memory file (HDF5 1.10;
/// other versions build a memory file and hand its image to the sink).
class StreamFile {
 public:
  /// @param name_for_messages the destination path, named in errors
  StreamFile(const std::string& name_for_messages, ByteSink& sink);
  ~StreamFile();
  StreamFile(const StreamFile&) = delete;
  StreamFile& operator=(const StreamFile&) = delete;

  /// The file, for createGroup/writeDataset/writeAttr.
  const Handle& handle() const { return file_; }
  /// Flushes the file and completes the sink: its size becomes the file's
  /// end of allocation, the superblock's status flags are cleared and its
  /// checksum recomputed (as fileImage() does). Later library writes (the
  /// close) are dropped, so the sink keeps these bytes.
  /// @return the file size in bytes
  uint64_t finish(const std::string& context);
  /// Closes the file; throws like Handle::close.
  void close(const std::string& context);
  /// When a sink call failed, rethrows its exception (call while handling
  /// the HDF5 error it caused); does nothing otherwise.
  void rethrowSinkError() const;

  /// False where HDF5's driver interface is not 1.10's: finish() then copies
  /// a memory file's image into the sink (same bytes, the old peak memory).
  static bool streamsDirectly();

  struct Context;

 private:
  std::unique_ptr<Context> ctx_;  // outlives file_ (declared first)
  Handle file_;
};
/// Opens an existing file read-only.
/// @throws CheckpointError naming `path` with the HDF5 error text
Handle openFileReadOnly(const std::string& path);
/// Creates a child group `name` of `loc`.
Handle createGroup(const Handle& loc, const std::string& name);
/// Opens the child group `name` of `loc`.
Handle openGroup(const Handle& loc, const std::string& name);
/// Opens the dataset `name` (a path relative to `loc`).
/// @param chunk_cache_bytes size of HDF5's raw-data chunk cache for this
///        dataset (bounds the memory of row reads); 0: the library default
Handle openDataset(const Handle& loc, const std::string& name,
                   size_t chunk_cache_bytes = 0);
/// True when `loc` has a link named `name` (probe without error output).
bool hasLink(const Handle& loc, const std::string& name);
/// Link names of a group in name order.
std::vector<std::string> listLinks(const Handle& group);
/// True when the link `name` of `loc` points to a dataset (false: a group).
bool isDataset(const Handle& loc, const std::string& name);

// --- datasets ---------------------------------------------------------------

/// Writes a dataset of `elem` values with shape `shape` from `data` (row-major).
/// Non-empty arrays are chunked (about 1 MiB chunks) with the Fletcher32
/// checksum filter; scalars and empty arrays are stored contiguously.
void writeDataset(const Handle& loc, const std::string& name, Elem elem,
                  const Shape& shape, const void* data);
/// Stored shape, element type and whether Fletcher32 protects the data.
DatasetInfo datasetInfo(const Handle& dset);
/// Reads the whole dataset converting to `mem` into `out` (`bytes` must equal
/// numel * size of `mem`). Fletcher32 is verified by HDF5 during this read.
void readDataset(const Handle& dset, Elem mem, void* out, size_t bytes);
/// Class, sign and width of a dataset's stored element type (DatasetInfo
/// only names the types the checkpoint writes; this names every type).
struct StoredType {
  enum class Class : uint8_t { kInteger, kFloat, kOther };
  Class cls = Class::kOther;
  bool is_signed = false;  ///< integers only
  size_t bytes = 0;        ///< element width
  std::string name;        ///< "uint8", "int16", "float64", "string", ...
};
/// @param dset an open dataset
/// @return its stored element type
StoredType storedType(const Handle& dset);
/// Reads rows [first, first + count) along dimension 0 of a dataset of rank
/// >= 1, converted to `mem`, into `out` (row-major, `bytes` must equal count
/// * elements per row * size of `mem`). Only the byte range (contiguous
/// layout) or the chunks (chunked layout) holding those rows are read; HDF5
/// converts types, saturating values that do not fit `mem`.
/// @param dset  an open dataset
/// @param first first row, 0 <= first <= dims[0] - count
/// @param count number of rows (0 reads nothing)
/// @param mem   memory element type, e.g. kU8 for pixels, kF32 for floats
/// @param out   destination buffer of `bytes` bytes
/// @param bytes size of `out`
/// @throws CheckpointError for a range outside the dataset, a size mismatch
///         or a failed read (with the HDF5 error text)
void readRows(const Handle& dset, int64_t first, int64_t count, Elem mem,
              void* out, size_t bytes);
/// File offset of a contiguous dataset's data, or of the first chunk when
/// chunked (for tests that corrupt data); -1 when it has none.
int64_t datasetOffset(const Handle& dset);

// --- attributes (scalar, fixed width) ---------------------------------------

/// Creates the scalar attribute `name` on `obj` (file, group or dataset) as
/// int64 / uint64 / float64 (little-endian); it must not exist yet.
/// @throws CheckpointError naming the attribute, with the HDF5 error text
void writeAttr(const Handle& obj, const std::string& name, int64_t v);
void writeAttr(const Handle& obj, const std::string& name, uint64_t v);
void writeAttr(const Handle& obj, const std::string& name, double v);
/// A fixed-length, NUL-padded UTF-8 string attribute.
void writeAttr(const Handle& obj, const std::string& name, const std::string& v);
/// True when `obj` has an attribute `name` (probe without error output).
bool hasAttr(const Handle& obj, const std::string& name);
/// Attribute names of an object in name order.
std::vector<std::string> listAttrs(const Handle& obj);
/// Kind of a scalar attribute: kI64/kU64 (any integer), kF64 (any float), or
/// kOther for strings (check with isStringAttr) and everything else.
Elem attrElem(const Handle& obj, const std::string& name);
bool isStringAttr(const Handle& obj, const std::string& name);
/// Readers throw CheckpointError when the attribute is missing or of another
/// class (naming the attribute, the expected and the found type).
int64_t readAttrI64(const Handle& obj, const std::string& name);
uint64_t readAttrU64(const Handle& obj, const std::string& name);
double readAttrF64(const Handle& obj, const std::string& name);
std::string readAttrStr(const Handle& obj, const std::string& name);

/// True when the linked HDF5 library was built thread-safe.
bool libraryThreadSafe();

namespace detail {
/// The native HDF5 memory type of an element kind (throws for kOther).
Id memType(Elem e);

/// Serialises calls into a non-thread-safe HDF5 library: holds one
/// process-wide recursive mutex from construction to destruction when
/// libraryThreadSafe() is false, nothing otherwise. Not copyable.
class ApiLock {
 public:
  ApiLock();
  ~ApiLock();
  ApiLock(const ApiLock&) = delete;
  ApiLock& operator=(const ApiLock&) = delete;

 private:
  bool locked_ = false;
};
/// Total bytes delivered by readRows() in this process (for tests that
/// check a reader does not load whole datasets).
uint64_t rowBytesRead();
/// Throws CheckpointError when `rc` < 0: "<context>: <call> failed: <stack>".
int64_t check(int64_t rc, const char* call, const std::string& context);
/// Text of this thread's HDF5 error stack (innermost first), then clears it.
std::string errorStack();
/// Switches off HDF5's automatic error printing for the calling thread.
void silenceAutoPrint();
/// The checkpoint layout settings (createMemoryFile, StreamFile): the 1.8
/// file format on a file access property list...
void setLayoutAccess(const Handle& fapl, const std::string& ctx);
/// ...and no object timestamps on a new file creation property list.
Handle layoutCreateProps(const std::string& ctx);
/// Recomputes a v2/v3 superblock's checksum in the first `size` bytes of a
/// file image (HDF5 1.10's H5Fget_file_image keeps the old one, see h5.cc).
void fixSuperblockChecksum(char* image, size_t size);
}  // namespace detail

}  // namespace slim::h5

/// Checks an H5* call (herr_t, htri_t, hid_t or ssize_t result); on failure
/// throws CheckpointError with the context parts, the call text and the HDF5
/// error stack. Evaluates to the call's result as int64_t. The ApiLock
/// temporary lives to the end of the full expression: the call and the
/// error-stack read happen under it.
#define SLIM_H5_CHECK(call, ...)                                        \
  ::slim::h5::detail::check((::slim::h5::detail::ApiLock(), (call)), #call, \
                            ::slim::detail::str(__VA_ARGS__))
