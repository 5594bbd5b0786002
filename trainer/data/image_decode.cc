// Decoders: libjpeg-turbo through jpeglib.h (needed for DCT scaling,
// jpeg_crop_scanline and jpeg_skip_scanlines) and libspng. Pixels come out
// as Pillow 9.4 builds them: libjpeg defaults (ISLOW IDCT, fancy upsampling)
// as PIL's JpegDecode uses them, Adobe-inverted CMYK ("CMYK;I"), and the
// PNG modes of PngImagePlugin._MODES followed by convert('RGB').
#include "trainer/data/image_decode.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>
#include <spng.h>

#include "trainer/data/source.h"

namespace slim::data {
namespace {

constexpr size_t kPad = 16;  // readable bytes after the last pixel (SIMD loads)

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw BadSampleError(path + ": " + what);
}

void checkSize(const std::string& path, int64_t w, int64_t h, int64_t max_pixels) {
  if (w <= 0 || h <= 0) fail(path, "corrupt image: zero width or height");
  if (max_pixels > 0 && w * h > max_pixels)
    fail(path, detail::str("image of ", w, " x ", h, " = ", w * h,
                           " pixels is over the max_pixels limit of ", max_pixels,
                           " (decompression bomb?)"));
}

// ---------------------------------------------------------------- JPEG ---
// libjpeg reports errors by calling error_exit, which must not return: it
// longjmps back into the stage function that set the jump. Stage functions
// hold only trivially destructible locals, so the jump skips no destructor.

struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr mgr;
  jmp_buf jump;
  bool truncated = false;
  char msg[JMSG_LENGTH_MAX] = {};

  JpegDecoder();
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo); }
};

JpegDecoder* owner(j_common_ptr c) { return static_cast<JpegDecoder*>(c->client_data); }

void onJpegError(j_common_ptr c) {
  (*c->err->format_message)(c, owner(c)->msg);
  longjmp(owner(c)->jump, 1);
}

// Warnings are ignored as PIL ignores them, except running out of data: PIL
// raises "image file is truncated" there (LOAD_TRUNCATED_IMAGES is off).
void onJpegMessage(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) owner(c)->truncated = true;
}

JpegDecoder::JpegDecoder() {
  cinfo.err = jpeg_std_error(&mgr);
  mgr.error_exit = onJpegError;
  mgr.emit_message = onJpegMessage;
  jpeg_create_decompress(&cinfo);
  cinfo.client_data = this;
}

bool jpegReadHeader(JpegDecoder* d, const uint8_t* bytes, size_t n) {
  if (setjmp(d->jump)) return false;
  jpeg_mem_src(&d->cinfo, bytes, static_cast<unsigned long>(n));
  jpeg_read_header(&d->cinfo, TRUE);
  return true;
}

// Starts decompression at 1/denom, crops columns to [*x0, *x0 + *w) (both
// adjusted by libjpeg to iMCU boundaries) and skips rows up to y0.
bool jpegStart(JpegDecoder* d, int denom, JDIMENSION* x0, JDIMENSION* w, JDIMENSION y0) {
  if (setjmp(d->jump)) return false;
  j_decompress_ptr c = &d->cinfo;
  c->scale_num = 1;
  c->scale_denom = static_cast<unsigned>(denom);
  jpeg_start_decompress(c);
  if (*x0 > 0 || *w < c->output_width) jpeg_crop_scanline(c, x0, w);
  if (y0 > 0) jpeg_skip_scanlines(c, y0);
  return true;
}

// Reads `rows` scanlines into RGB rows of `out` (stride w*3); `tmp` holds one
// CMYK row. Gray is replicated; CMYK;I goes through Pillow's cmyk2rgb.
bool jpegReadRows(JpegDecoder* d, uint8_t* out, JDIMENSION rows, uint8_t* tmp) {
  if (setjmp(d->jump)) return false;
  j_decompress_ptr c = &d->cinfo;
  const JDIMENSION w = c->output_width;
  for (JDIMENSION r = 0; r < rows; ++r) {
    uint8_t* row = out + static_cast<size_t>(r) * w * 3;
    JSAMPROW target = c->out_color_space == JCS_CMYK ? tmp : row;
    if (jpeg_read_scanlines(c, &target, 1) != 1) return false;
    if (c->out_color_space == JCS_GRAYSCALE) {
      for (JDIMENSION x = w; x-- > 0;) row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = row[x];
    } else if (c->out_color_space == JCS_CMYK) {
      for (JDIMENSION x = 0; x < w; ++x) {
        // "CMYK;I": the file stores inverted ink (Adobe); unpacking inverts.
        const int nk = tmp[4 * x + 3];  // 255 - (255 - raw K)
        for (int ch = 0; ch < 3; ++ch) {
          const int ink = 255 - tmp[4 * x + ch];
          int t = ink * nk + 128;
          t = ((t >> 8) + t) >> 8;  // Pillow's MULDIV255
          row[3 * x + ch] = static_cast<uint8_t>(std::clamp(nk - t, 0, 255));
        }
      }
    }
  }
  if (c->output_scanline >= c->output_height) {
    jpeg_finish_decompress(c);
  } else {
    jpeg_abort_decompress(c);
  }
  return true;
}

// True if an EOI marker (FF D9) lies at or after `from`: entropy-coded data
// never contains FF D9, so a file cut inside its scans has none there.
bool hasEoiAfter(const uint8_t* bytes, size_t n, size_t from) {
  for (size_t i = n; i-- > from + 1;)
    if (bytes[i] == 0xD9 && bytes[i - 1] == 0xFF) return true;
  return false;
}

RgbRegion decodeJpeg(const uint8_t* bytes, size_t n, const std::string& path,
                     int64_t max_pixels, const DecodePlanner& planner,
                     std::vector<uint8_t>& scratch) {
  JpegDecoder d;
  j_decompress_ptr c = &d.cinfo;
  if (!jpegReadHeader(&d, bytes, n))
    fail(path, std::string("unsupported or corrupt image (JPEG: ") + d.msg + ")");
  const int64_t W = c->image_width, H = c->image_height;
  checkSize(path, W, H, max_pixels);
  const size_t scan_start = n - c->src->bytes_in_buffer;
  switch (c->num_components) {
    case 1: c->out_color_space = JCS_GRAYSCALE; break;
    case 3: c->out_color_space = JCS_RGB; break;
    case 4: c->out_color_space = JCS_CMYK; break;
    default:
      fail(path, detail::str("unsupported JPEG with ", c->num_components, " components"));
  }
  DecodePlan plan = planner(W, H, true);
  int denom = plan.scale_denom;
  if (denom != 1 && denom != 2 && denom != 4 && denom != 8) denom = 1;
  const int64_t sw = jpegScaledSize(W, denom), sh = jpegScaledSize(H, denom);
  // Fancy upsampling reads chroma one sample beyond a pixel's own: widen a
  // cropped or skipped region by one iMCU so its pixels match a full decode.
  const int64_t mx = std::max(1, c->max_h_samp_factor * DCTSIZE / denom);
  const int64_t my = std::max(1, c->max_v_samp_factor * DCTSIZE / denom);
  const int64_t x0 = plan.x0 <= 0 ? 0 : std::clamp<int64_t>(plan.x0 - mx, 0, sw - 1);
  const int64_t y0 = plan.y0 <= 0 ? 0 : std::clamp<int64_t>(plan.y0 - my, 0, sh - 1);
  const int64_t x1 = plan.x1 < 0 ? sw : std::clamp<int64_t>(plan.x1 + mx, x0 + 1, sw);
  const int64_t y1 = plan.y1 < 0 ? sh : std::clamp<int64_t>(plan.y1, y0 + 1, sh);

  JDIMENSION cx = static_cast<JDIMENSION>(x0), cw = static_cast<JDIMENSION>(x1 - x0);
  if (!jpegStart(&d, denom, &cx, &cw, static_cast<JDIMENSION>(y0)))
    fail(path, std::string("corrupt image (JPEG: ") + d.msg + ")");
  const int64_t w = c->output_width, h = y1 - y0;
  scratch.resize(static_cast<size_t>(w * h * 3 + w * 4) + kPad);
  uint8_t* rgb = scratch.data();
  uint8_t* tmp = rgb + w * h * 3;  // one CMYK row after the pixels
  if (!jpegReadRows(&d, rgb, static_cast<JDIMENSION>(h), tmp))
    fail(path, std::string("corrupt image (JPEG: ") + d.msg + ")");
  if (d.truncated || !hasEoiAfter(bytes, n, scan_start > 2 ? scan_start - 2 : 0))
    fail(path, "image file is truncated (JPEG data ends before its end marker)");
  RgbRegion r;
  r.data = rgb;
  r.stride = w * 3;
  r.x0 = cx;
  r.y0 = y0;
  r.w = w;
  r.h = h;
  r.full_width = sw;
  r.full_height = sh;
  r.scale_denom = denom;
  return r;
}

// ----------------------------------------------------------------- PNG ---

struct SpngCtx {
  spng_ctx* ctx = spng_ctx_new(0);
  ~SpngCtx() { spng_ctx_free(ctx); }
};

// Sample `i` of a packed row of `bits`-bit samples (MSB first, big-endian).
inline unsigned sampleAt(const uint8_t* row, int64_t i, int bits) {
  switch (bits) {
    case 8: return row[i];
    case 16: return (static_cast<unsigned>(row[2 * i]) << 8) | row[2 * i + 1];
    default: {
      const int64_t bit = i * bits;
      const int shift = 8 - bits - static_cast<int>(bit & 7);
      return (row[bit >> 3] >> shift) & ((1u << bits) - 1);
    }
  }
}

// One PNG row in its own format to RGB as Pillow 9.4 converts it: gray
// 1/2/4 bits scaled to 0..255 ("1", "L;2", "L;4"), 16-bit gray becomes mode
// "I" and convert('RGB') clips it to 255, other 16-bit samples keep their
// high byte, palettes expand, alpha is dropped without compositing.
void pngRowToRgb(const uint8_t* row, int64_t w, int ct, int bits, const spng_plte& plte,
                 uint8_t* out) {
  const int chans = ct == 2 ? 3 : ct == 4 ? 2 : ct == 6 ? 4 : 1;
  const int hi = bits == 16 ? 2 : 1;  // bytes per sample; [0] is the high byte
  for (int64_t x = 0; x < w; ++x, out += 3) {
    if (ct == 0) {
      unsigned v = sampleAt(row, x, bits);
      if (bits == 1) v = v ? 255 : 0;
      if (bits == 2) v *= 85;
      if (bits == 4) v *= 17;
      if (bits == 16) v = std::min(v, 255u);
      out[0] = out[1] = out[2] = static_cast<uint8_t>(v);
    } else if (ct == 3) {
      const unsigned idx = sampleAt(row, x, bits);
      if (idx < plte.n_entries) {
        out[0] = plte.entries[idx].red;
        out[1] = plte.entries[idx].green;
        out[2] = plte.entries[idx].blue;
      } else {
        out[0] = out[1] = out[2] = 0;
      }
    } else {
      const uint8_t* px = row + x * chans * hi;
      if (ct == 4) {
        out[0] = out[1] = out[2] = px[0];
      } else {
        out[0] = px[0];
        out[1] = px[hi];
        out[2] = px[2 * hi];
      }
    }
  }
}

RgbRegion decodePng(const uint8_t* bytes, size_t n, const std::string& path,
                    int64_t max_pixels, const DecodePlanner& planner,
                    std::vector<uint8_t>& scratch) {
  SpngCtx s;
  auto check = [&](int rc, const char* what) {
    if (rc != 0) fail(path, detail::str(what, " (PNG: ", spng_strerror(rc), ")"));
  };
  if (s.ctx == nullptr) fail(path, "cannot create a PNG decoder");
  check(spng_set_png_buffer(s.ctx, bytes, n), "corrupt image");
  spng_ihdr ihdr{};
  check(spng_get_ihdr(s.ctx, &ihdr), "unsupported or corrupt image");
  const int64_t w = ihdr.width, h = ihdr.height;
  checkSize(path, w, h, max_pixels);
  planner(w, h, false);  // PNG rows are decoded whole
  spng_plte plte{};
  const int ct = ihdr.color_type, bits = ihdr.bit_depth;
  if (ct == SPNG_COLOR_TYPE_INDEXED) check(spng_get_plte(s.ctx, &plte), "corrupt palette image");
  size_t raw_size = 0;
  check(spng_decoded_image_size(s.ctx, SPNG_FMT_RAW, &raw_size), "unsupported image");
  thread_local std::vector<uint8_t> raw;
  raw.resize(raw_size);
  const int rc = spng_decode_image(s.ctx, raw.data(), raw_size, SPNG_FMT_RAW, 0);
  if (rc == SPNG_EOF) fail(path, "image file is truncated (PNG)");
  check(rc, "corrupt image");
  const size_t row_bytes = raw_size / static_cast<size_t>(h);
  scratch.resize(static_cast<size_t>(w * h * 3) + kPad);
  for (int64_t y = 0; y < h; ++y)
    pngRowToRgb(raw.data() + y * row_bytes, w, ct, bits, plte, scratch.data() + y * w * 3);
  RgbRegion r;
  r.data = scratch.data();
  r.stride = w * 3;
  r.w = r.full_width = w;
  r.h = r.full_height = h;
  return r;
}

}  // namespace

ImageFormat sniffImageFormat(const uint8_t* b, size_t n) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(b, kPng, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

RgbRegion decodeImageRegion(const uint8_t* bytes, size_t n, const std::string& path,
                            int64_t max_pixels, const DecodePlanner& planner,
                            std::vector<uint8_t>& scratch) {
  switch (sniffImageFormat(bytes, n)) {
    case ImageFormat::kJpeg: return decodeJpeg(bytes, n, path, max_pixels, planner, scratch);
    case ImageFormat::kPng: return decodePng(bytes, n, path, max_pixels, planner, scratch);
    default: break;
  }
  fail(path, "unsupported or corrupt image (neither JPEG nor PNG)");
}

void imageSize(const uint8_t* bytes, size_t n, const std::string& path, int64_t* width,
               int64_t* height) {
  if (sniffImageFormat(bytes, n) == ImageFormat::kJpeg) {
    JpegDecoder d;
    if (!jpegReadHeader(&d, bytes, n))
      fail(path, std::string("unsupported or corrupt image (JPEG: ") + d.msg + ")");
    *width = d.cinfo.image_width;
    *height = d.cinfo.image_height;
    return;
  }
  if (sniffImageFormat(bytes, n) != ImageFormat::kPng)
    fail(path, "unsupported or corrupt image (neither JPEG nor PNG)");
  SpngCtx s;
  spng_ihdr ihdr{};
  if (s.ctx == nullptr || spng_set_png_buffer(s.ctx, bytes, n) != 0 ||
      spng_get_ihdr(s.ctx, &ihdr) != 0)
    fail(path, "unsupported or corrupt image (PNG header)");
  *width = ihdr.width;
  *height = ihdr.height;
}

MaskImage decodeMaskPng(const uint8_t* bytes, size_t n, const std::string& path,
                        int64_t max_pixels) {
  if (sniffImageFormat(bytes, n) != ImageFormat::kPng)
    fail(path, "a segmentation mask must be a PNG (palette or grayscale; JPEG is lossy and "
               "would change the class ids)");
  SpngCtx s;
  auto check = [&](int rc, const char* what) {
    if (rc != 0) fail(path, detail::str(what, " (PNG: ", spng_strerror(rc), ")"));
  };
  if (s.ctx == nullptr) fail(path, "cannot create a PNG decoder");
  check(spng_set_png_buffer(s.ctx, bytes, n), "corrupt mask");
  spng_ihdr ihdr{};
  check(spng_get_ihdr(s.ctx, &ihdr), "unsupported or corrupt mask");
  const int64_t w = ihdr.width, h = ihdr.height;
  checkSize(path, w, h, max_pixels);
  const int ct = ihdr.color_type, bits = ihdr.bit_depth;
  if (ct != SPNG_COLOR_TYPE_GRAYSCALE && ct != SPNG_COLOR_TYPE_INDEXED)
    fail(path, detail::str("a segmentation mask must be a palette or grayscale PNG (class id = "
                           "palette index or gray value), this one has PNG colour type ", ct));
  size_t raw_size = 0;
  check(spng_decoded_image_size(s.ctx, SPNG_FMT_RAW, &raw_size), "unsupported mask");
  std::vector<uint8_t> raw(raw_size);
  const int rc = spng_decode_image(s.ctx, raw.data(), raw_size, SPNG_FMT_RAW, 0);
  if (rc == SPNG_EOF) fail(path, "mask file is truncated (PNG)");
  check(rc, "corrupt mask");
  const size_t row_bytes = raw_size / static_cast<size_t>(h);
  MaskImage m;
  m.width = w;
  m.height = h;
  m.values.resize(static_cast<size_t>(w * h));
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = raw.data() + y * row_bytes;
    uint16_t* out = m.values.data() + y * w;
    for (int64_t x = 0; x < w; ++x) {
      if (bits == 16) {
        out[x] = static_cast<uint16_t>(row[2 * x] << 8 | row[2 * x + 1]);  // big-endian
      } else {  // 1, 2, 4, 8 bits, most significant bits first
        const int64_t bit = x * bits;
        out[x] = static_cast<uint16_t>((row[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1));
      }
    }
  }
  return m;
}

RgbImage decodeImage(const uint8_t* bytes, size_t n, const std::string& path,
                     int64_t max_pixels) {
  std::vector<uint8_t> scratch;
  const RgbRegion r = decodeImageRegion(bytes, n, path, max_pixels,
                                        [](int64_t, int64_t, bool) { return DecodePlan{}; },
                                        scratch);
  RgbImage img;
  img.width = r.w;
  img.height = r.h;
  img.pixels.resize(static_cast<size_t>(r.w * r.h * 3));
  for (int64_t y = 0; y < r.h; ++y)
    std::memcpy(img.pixels.data() + y * r.w * 3, r.data + y * r.stride, r.w * 3);
  return img;
}

}  // namespace slim::data
