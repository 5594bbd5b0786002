// IDX reader over zlib's gz* API (handles .gz and plain files alike).
#include "trainer/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <type_traits>

namespace slim::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const noexcept { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads exactly `n` bytes at (uncompressed) offset `*offset`, advancing it.
// Throws DataError on a short read (truncation) or a gzip error.
void readExact(gzFile f, const std::string& path, void* dst, size_t n,
               size_t* offset, const char* what) {
  auto* p = static_cast<unsigned char*>(dst);
  size_t done = 0;
  while (done < n) {
    // gzread takes an unsigned count; read in chunks of at most 1 GiB.
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
    int got = gzread(f, p + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const std::string msg = gzerror(f, &errnum);
      const char* hint = msg.find("data check") != std::string::npos
                             ? " (the gzip trailer's CRC-32 does not match the data)"
                         : msg.find("length check") != std::string::npos
                             ? " (the gzip trailer's length does not match the data)"
                             : "";
      SLIM_THROW(DataError, path, ": corrupt gzip data while reading ", what,
                 " at byte offset ", *offset + done, ": ", msg, hint);
    }
    if (got == 0)
      SLIM_THROW(DataError, path, ": file truncated at byte offset ",
                 *offset + done, " while reading ", what, " (needed ",
                 n - done, " more bytes)");
    done += static_cast<size_t>(got);
  }
  *offset += n;
}

uint32_t bigEndian32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
         (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

constexpr size_t kMaxIdxBytes = size_t{1} << 36;  // 64 GiB

// One parsed IDX file: dims and the raw uint8 payload written into `out`.
struct IdxFile {
  std::vector<int64_t> dims;
};

// Opens `path`, checks the magic, reads the dims and then calls
// `payload(dims)` to get a destination buffer for the data.
template <class Alloc>
IdxFile readIdx(const std::string& path, uint32_t want_magic, Alloc payload) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f)
    SLIM_THROW(DataError, path, ": cannot open IDX file: ", std::strerror(errno));
  gzbuffer(f.get(), 1 << 20);
  size_t offset = 0;
  unsigned char hdr[4];
  readExact(f.get(), path, hdr, 4, &offset, "the magic number");
  const uint32_t magic = bigEndian32(hdr);
  if (magic != want_magic)
    SLIM_THROW(DataError, path, ": bad IDX magic: expected 0x", std::hex,
               want_magic, ", found 0x", magic, std::dec,
               want_magic == kIdxImagesMagic ? " (is this an images file?)"
                                             : " (is this a labels file?)");
  IdxFile out;
  const int ndim = hdr[3];
  size_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    unsigned char b[4];
    readExact(f.get(), path, b, 4, &offset, "the dimensions");
    const uint32_t dim = bigEndian32(b);
    out.dims.push_back(static_cast<int64_t>(dim));
    // A corrupt header must not turn into a terabyte allocation.
    if (dim != 0 && count > kMaxIdxBytes / dim)
      SLIM_THROW(DataError, path, ": implausible IDX dimensions in the header",
                 " (more than ", kMaxIdxBytes, " data bytes)");
    count *= dim;
  }
  void* dst = payload(out.dims);
  readExact(f.get(), path, dst, count, &offset, "the data");
  // Anything after the declared payload means the header lies about the size.
  // Reading on to the end of the stream also makes zlib check the gzip
  // trailer (CRC-32 and length): a damaged .gz is an error, not data.
  unsigned char extra;
  const int got = gzread(f.get(), &extra, 1);
  if (got > 0)
    SLIM_THROW(DataError, path, ": unexpected data after byte offset ", offset,
               " (header declares ", count, " data bytes)");
  int errnum = Z_OK;
  const char* msg = gzerror(f.get(), &errnum);
  if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
    SLIM_THROW(DataError, path, ": corrupt gzip stream after the data (byte offset ",
               offset, "): ", msg, " (bad CRC or length in the gzip trailer, or a "
               "truncated file)");
  return out;
}

}  // namespace

Dataset loadIdx(const std::string& images_path, const std::string& labels_path) {
  Tensor images;
  readIdx(images_path, kIdxImagesMagic, [&](const std::vector<int64_t>& dims) {
    images = Tensor({dims[0], 1, dims[1], dims[2]}, DType::kU8);
    return images.raw();
  });
  Tensor raw_labels;
  readIdx(labels_path, kIdxLabelsMagic, [&](const std::vector<int64_t>& dims) {
    raw_labels = Tensor({dims[0]}, DType::kU8);
    return raw_labels.raw();
  });
  const int64_t n = images.dim(0);
  if (raw_labels.numel() != n)
    SLIM_THROW(DataError, "IDX sample count mismatch: ", images_path, " holds ",
               n, " images but ", labels_path, " holds ", raw_labels.numel(),
               " labels");
  Tensor labels({n}, DType::kI64);
  const uint8_t* src = raw_labels.data<uint8_t>();
  int64_t* y = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) y[i] = src[i];
  return tensorDataset(std::move(images), std::move(labels),
                       "IDX " + images_path + " + " + labels_path);
}

}  // namespace slim::data
