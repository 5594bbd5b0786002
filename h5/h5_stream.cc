// StreamFile (h5.h): an HDF5 file whose bytes go straight to a ByteSink.
#include <algorithm>
#include <cstring>
#include <exception>
#include <iterator>
#include <new>

#include "h5/h5.h"
#include "trainer/core/log.h"

#include <hdf5.h>

namespace slim::h5 {

using detail::fixSuperblockChecksum;
using detail::layoutCreateProps;
using detail::setLayoutAccess;
using detail::silenceAutoPrint;
using ::slim::detail::str;

// --- StreamFile: a file written through a ByteSink --------------------------
//
// HDF5 1.10: a small virtual file driver ("slim_stream") hands every write to
// the sink and reads back from it. It reports the core driver's feature flags
// and free-list map, so the library allocates and writes exactly as it does
// for createMemoryFile(): after the same flush, the sink holds the bytes of
// the memory file (its end of allocation; what was never written is zero),
// and finish() applies fileImage()'s superblock edits to the first bytes.
// Other HDF5 versions (whose driver interface differs) build a memory file
// and give its image to the sink in finish().

#if H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10
#define SLIM_H5_STREAM_DRIVER 1
#else
#define SLIM_H5_STREAM_DRIVER 0
#endif

struct StreamFile::Context {
  ByteSink* sink = nullptr;
  std::exception_ptr error;  // the sink's first failure
  bool detached = false;     // finish() done (or abandoned): drop writes
};

namespace {

#if SLIM_H5_STREAM_DRIVER

/// Driver info in the file access property list (copied bytewise by HDF5).
struct StreamFapl {
  StreamFile::Context* ctx;
};

/// One open file of the driver; `pub` first (HDF5 passes &pub around).
struct StreamVfd {
  H5FD_t pub;
  StreamFile::Context* ctx;
  haddr_t eoa;
  haddr_t eof;
};

StreamVfd* vfdOf(H5FD_t* f) { return reinterpret_cast<StreamVfd*>(f); }
const StreamVfd* vfdOf(const H5FD_t* f) { return reinterpret_cast<const StreamVfd*>(f); }

/// Runs a sink call. A failure is recorded for StreamFile to rethrow and the
/// call reports success: HDF5 1.10 cannot close a file cleanly after a failed
/// driver write ("slist already enabled"), so once the sink has failed, the
/// rest of the file goes nowhere (reads give zeros) and the encoding ends with
/// the sink's error.
template <class Fn>
herr_t sinkCall(StreamFile::Context* ctx, Fn&& fn) {
  if (ctx->error || ctx->detached) return 0;
  try {
    fn();
  } catch (...) {
    ctx->error = std::current_exception();
  }
  return 0;
}

H5FD_t* streamOpen(const char*, unsigned flags, hid_t fapl, haddr_t) {
  // Like the core driver without a backing store: only creating succeeds
  // (H5Fcreate first tries a non-creating open, which must fail).
  if (!(flags & H5F_ACC_CREAT)) return nullptr;
  const auto* fa = static_cast<const StreamFapl*>(H5Pget_driver_info(fapl));
  if (fa == nullptr || fa->ctx == nullptr) return nullptr;
  auto* f = new (std::nothrow) StreamVfd{};
  if (f == nullptr) return nullptr;
  f->ctx = fa->ctx;
  return &f->pub;
}

herr_t streamClose(H5FD_t* f) {
  delete vfdOf(f);
  return 0;
}

int streamCmp(const H5FD_t* a, const H5FD_t* b) {
  const auto* x = vfdOf(a)->ctx;
  const auto* y = vfdOf(b)->ctx;
  return x < y ? -1 : x > y ? 1 : 0;
}

herr_t streamQuery(const H5FD_t*, unsigned long* flags) {
  // The core driver's flags without a backing store (H5FDcore.c).
  *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
           H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_ALLOW_FILE_IMAGE |
           H5FD_FEAT_CAN_USE_FILE_IMAGE_CALLBACKS;
  return 0;
}

haddr_t streamGetEoa(const H5FD_t* f, H5FD_mem_t) { return vfdOf(f)->eoa; }

herr_t streamSetEoa(H5FD_t* f, H5FD_mem_t, haddr_t addr) {
  vfdOf(f)->eoa = addr;
  return 0;
}

haddr_t streamGetEof(const H5FD_t* f, H5FD_mem_t) { return vfdOf(f)->eof; }

herr_t streamRead(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  StreamVfd* v = vfdOf(f);
  std::memset(buf, 0, size);  // what a failed or detached sink reads
  return sinkCall(v->ctx, [&] { v->ctx->sink->readAt(addr, buf, size); });
}

herr_t streamWrite(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buf) {
  StreamVfd* v = vfdOf(f);
  v->eof = std::max<haddr_t>(v->eof, addr + size);
  return sinkCall(v->ctx, [&] { v->ctx->sink->writeAt(addr, buf, size); });
}

herr_t streamFlush(H5FD_t*, hid_t, hbool_t) { return 0; }
herr_t streamTruncate(H5FD_t*, hid_t, hbool_t) { return 0; }  // finish() sizes the sink

/// The driver's id, registered on first use.
hid_t streamDriver() {
  static const hid_t id = [] {
    static H5FD_class_t cls{};
    cls.name = "slim_stream";
    cls.maxaddr = static_cast<haddr_t>(~size_t{0} - 1);  // the core driver's MAXADDR
    cls.fc_degree = H5F_CLOSE_WEAK;
    cls.fapl_size = sizeof(StreamFapl);
    cls.open = streamOpen;
    cls.close = streamClose;
    cls.cmp = streamCmp;
    cls.query = streamQuery;
    cls.get_eoa = streamGetEoa;
    cls.set_eoa = streamSetEoa;
    cls.get_eof = streamGetEof;
    cls.read = streamRead;
    cls.write = streamWrite;
    cls.flush = streamFlush;
    cls.truncate = streamTruncate;
    const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
    std::copy(std::begin(map), std::end(map), std::begin(cls.fl_map));
    return static_cast<hid_t>(
        SLIM_H5_CHECK(H5FDregister(&cls), "registering the HDF5 stream driver"));
  }();
  return id;
}

#endif  // SLIM_H5_STREAM_DRIVER

}  // namespace

StreamFile::StreamFile(const std::string& name, ByteSink& sink)
    : ctx_(std::make_unique<Context>()) {
  ctx_->sink = &sink;
#if SLIM_H5_STREAM_DRIVER
  detail::ApiLock lock;
  silenceAutoPrint();
  const std::string ctx = str("creating HDF5 file ", name);
  Handle fapl(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), ctx), Handle::Kind::kPropList);
  const StreamFapl info{ctx_.get()};
  SLIM_H5_CHECK(H5Pset_driver(fapl.id(), streamDriver(), &info), ctx);
  setLayoutAccess(fapl, ctx);
  Handle fcpl = layoutCreateProps(ctx);
  try {
    file_ = Handle(SLIM_H5_CHECK(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), ctx),
                   Handle::Kind::kFile);
  } catch (const CheckpointError&) {
    rethrowSinkError();
    throw;
  }
#else
  file_ = createMemoryFile(name);
#endif
}

StreamFile::~StreamFile() {
  // An abandoned file (an exception on the way): its closing writes go nowhere.
  ctx_->detached = true;
  try {
    file_.close("closing an abandoned HDF5 stream file");
  } catch (const std::exception& e) {
    // The library may still hold the file (and call the driver with ctx_):
    // keep the context alive rather than leave it a dangling pointer.
    (void)ctx_.release();
    try {
      log::warn(e.what());
    } catch (...) {
    }
  }
}

bool StreamFile::streamsDirectly() { return SLIM_H5_STREAM_DRIVER != 0; }

void StreamFile::rethrowSinkError() const {
  if (ctx_->error) std::rethrow_exception(ctx_->error);
}

uint64_t StreamFile::finish(const std::string& context) {
  detail::ApiLock lock;
  silenceAutoPrint();
#if SLIM_H5_STREAM_DRIVER
  uint64_t size = 0;
  try {
    SLIM_H5_CHECK(H5Fflush(file_.id(), H5F_SCOPE_GLOBAL), context);
    // The image's size: the end of allocation (what H5Fget_file_image copies).
    size = static_cast<uint64_t>(SLIM_H5_CHECK(H5Fget_file_image(file_.id(), nullptr, 0), context));
  } catch (const CheckpointError&) {
    rethrowSinkError();  // the sink's own error (disk full, ...) rather than HDF5's
    throw;
  }
  ctx_->detached = true;
  if (ctx_->error) ctx_->sink->reportFailure(size, ctx_->error);  // a write failed on the way
  ctx_->sink->resize(size);
  // H5Fget_file_image's edits: clear the status flags of the v2/v3 superblock
  // (byte 11), then fixSuperblockChecksum's repair.
  std::vector<char> head(static_cast<size_t>(std::min<uint64_t>(size, 256)));
  ctx_->sink->readAt(0, head.data(), head.size());
  if (head.size() < 12 || head[8] < 2 || head[8] > 3)
    SLIM_THROW(CheckpointError, context, ": expected a version 2 or 3 superblock");
  head[11] = 0;
  fixSuperblockChecksum(head.data(), head.size());
  ctx_->sink->writeAt(0, head.data(), head.size());
  return size;
#else
  const std::vector<char> image = fileImage(file_, context);
  ctx_->detached = true;
  ctx_->sink->resize(0);
  ctx_->sink->writeAt(0, image.data(), image.size());
  return image.size();
#endif
}

void StreamFile::close(const std::string& context) { file_.close(context); }

}  // namespace slim::h5
