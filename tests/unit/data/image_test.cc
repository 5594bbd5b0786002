// Image decode, resize and transforms without Python: JPEG/PNG bytes encoded
// here (TurboJPEG, libspng), exact decodes, cropped decoding, resize
// identities and windows, flip/BGR, determinism, and every error path.
#include <gtest/gtest.h>
#include <spng.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "trainer/data/image_decode.h"
#include "trainer/data/image_transform.h"
#include "trainer/data/source.h"

namespace slim::data {
namespace {

using Bytes = std::vector<uint8_t>;

// A smooth but non-trivial RGB pattern (H, W, 3).
Bytes pattern(int w, int h) {
  Bytes p(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* q = &p[static_cast<size_t>((y * w + x) * 3)];
      q[0] = static_cast<uint8_t>(x * 255 / w);
      q[1] = static_cast<uint8_t>(y * 255 / h);
      q[2] = static_cast<uint8_t>((x * 7 + y * 13) % 256);
    }
  return p;
}

Bytes encodeJpeg(const Bytes& px, int w, int h, int pf, int subsamp, int flags = 0) {
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, px.data(), w, 0, h, pf, &buf, &size, subsamp, 90, flags), 0);
  Bytes out(buf, buf + size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

// TurboJPEG's defaults (ISLOW, fancy upsampling) are what PIL decodes with.
Bytes tjDecode(const Bytes& jpg, int w, int h, int pf) {
  tjhandle tj = tjInitDecompress();
  Bytes out(static_cast<size_t>(w * h * tjPixelSize[pf]));
  EXPECT_EQ(tjDecompress2(tj, jpg.data(), jpg.size(), out.data(), w, 0, h, pf, 0), 0);
  tjDestroy(tj);
  return out;
}

Bytes encodePng(const Bytes& data, int w, int h, int color_type, int depth,
                const std::vector<spng_plte_entry>& plte = {}) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(w);
  ihdr.height = static_cast<uint32_t>(h);
  ihdr.color_type = static_cast<uint8_t>(color_type);
  ihdr.bit_depth = static_cast<uint8_t>(depth);
  spng_set_ihdr(ctx, &ihdr);
  if (!plte.empty()) {
    spng_plte p{};
    p.n_entries = static_cast<uint32_t>(plte.size());
    for (size_t i = 0; i < plte.size(); ++i) p.entries[i] = plte[i];
    spng_set_plte(ctx, &p);
  }
  EXPECT_EQ(spng_encode_image(ctx, data.data(), data.size(), SPNG_FMT_PNG,
                              SPNG_ENCODE_FINALIZE), 0);
  size_t size = 0;
  int err = 0;
  auto* buf = static_cast<uint8_t*>(spng_get_png_buffer(ctx, &size, &err));
  Bytes out(buf, buf + size);
  free(buf);
  spng_ctx_free(ctx);
  return out;
}

RgbImage decode(const Bytes& b) { return decodeImage(b.data(), b.size(), "mem.img", 0); }

Bytes run(const Bytes& b, const ImageTransform& t, uint64_t seed) {
  Bytes out(static_cast<size_t>(3 * t.img_size * t.img_size));
  transformImageBytes(b.data(), b.size(), "mem.img", t, seed, out.data());
  return out;
}

std::string errorOf(const Bytes& b, const ImageTransform& t, const std::string& path) {
  Bytes out(static_cast<size_t>(3 * t.img_size * t.img_size));
  try {
    transformImageBytes(b.data(), b.size(), path, t, kNoAugment, out.data());
  } catch (const BadSampleError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ImageDecode, JpegMatchesTurboJpeg) {
  for (int ss : {TJSAMP_444, TJSAMP_420, TJSAMP_422}) {
    const Bytes jpg = encodeJpeg(pattern(37, 29), 37, 29, TJPF_RGB, ss);
    const RgbImage img = decode(jpg);
    ASSERT_EQ(img.width, 37);
    ASSERT_EQ(img.height, 29);
    EXPECT_EQ(img.pixels, tjDecode(jpg, 37, 29, TJPF_RGB)) << "subsampling " << ss;
  }
}

TEST(ImageDecode, ProgressiveAndGray) {
  const Bytes prog = encodeJpeg(pattern(40, 33), 40, 33, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE);
  EXPECT_EQ(decode(prog).pixels, tjDecode(prog, 40, 33, TJPF_RGB));
  Bytes gray(40 * 33);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 3);
  const Bytes jpg = encodeJpeg(gray, 40, 33, TJPF_GRAY, TJSAMP_GRAY);
  const Bytes g = tjDecode(jpg, 40, 33, TJPF_GRAY);
  const RgbImage img = decode(jpg);
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_TRUE(img.pixels[3 * i] == g[i] && img.pixels[3 * i + 1] == g[i] &&
                img.pixels[3 * i + 2] == g[i]);
}

// Cropped + row-skipped decoding must give the full decode's pixels.
TEST(ImageDecode, RegionMatchesFullDecode) {
  const int w = 203, h = 157;
  Bytes px = pattern(w, h);
  for (size_t i = 0; i < px.size(); ++i)  // texture, so every block has detail
    px[i] = static_cast<uint8_t>(px[i] ^ (i * 2654435761u >> 13));
  const Bytes jpg = encodeJpeg(px, w, h, TJPF_RGB, TJSAMP_420);
  const RgbImage full = decode(jpg);
  std::vector<uint8_t> scratch;
  for (int64_t x0 : {0, 5, 17, 64}) {
    for (int64_t y0 : {0, 3, 33, 100}) {
      const RgbRegion r = decodeImageRegion(
          jpg.data(), jpg.size(), "mem.jpg", 0,
          [&](int64_t, int64_t, bool) { return DecodePlan{1, x0, y0, x0 + 50, y0 + 40}; }, scratch);
      ASSERT_LE(r.x0, x0);
      ASSERT_LE(r.y0, y0);
      for (int64_t y = y0; y < y0 + 40; ++y)
        for (int64_t x = x0; x < x0 + 50; ++x)
          for (int c = 0; c < 3; ++c)
            ASSERT_EQ(r.data[(y - r.y0) * r.stride + (x - r.x0) * 3 + c],
                      full.pixels[static_cast<size_t>((y * w + x) * 3 + c)])
                << "x0 " << x0 << " y0 " << y0 << " at " << x << "," << y;
    }
  }
}

TEST(ImageDecode, PngModesAsPillowConverts) {
  const Bytes rgb = pattern(5, 4);
  EXPECT_EQ(decode(encodePng(rgb, 5, 4, SPNG_COLOR_TYPE_TRUECOLOR, 8)).pixels, rgb);
  Bytes rgba;  // alpha dropped, not composited
  for (size_t i = 0; i < rgb.size(); i += 3)
    rgba.insert(rgba.end(), {rgb[i], rgb[i + 1], rgb[i + 2], 7});
  EXPECT_EQ(decode(encodePng(rgba, 5, 4, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8)).pixels, rgb);
  // 16-bit gray is Pillow mode "I"; convert('RGB') clips it at 255.
  auto be16 = [](std::vector<uint16_t> v) {  // spng encodes host-endian samples
    Bytes b(v.size() * 2);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  const RgbImage g = decode(encodePng(be16({0x0010, 0x00FF, 0x0100, 0xABCD}), 4, 1,
                                      SPNG_COLOR_TYPE_GRAYSCALE, 16));
  EXPECT_EQ(g.pixels, (Bytes{16, 16, 16, 255, 255, 255, 255, 255, 255, 255, 255, 255}));
  // 16-bit RGB keeps the high byte.
  EXPECT_EQ(decode(encodePng(be16({0x1234, 0x5678, 0x9ABC}), 1, 1, SPNG_COLOR_TYPE_TRUECOLOR, 16))
                .pixels,
            (Bytes{0x12, 0x56, 0x9A}));
  // 2-bit gray scales by 85; 4-bit palette expands.
  EXPECT_EQ(decode(encodePng({0x1B}, 4, 1, SPNG_COLOR_TYPE_GRAYSCALE, 2)).pixels,
            (Bytes{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));
  const std::vector<spng_plte_entry> pal = {{1, 2, 3, 0}, {40, 50, 60, 0}};
  EXPECT_EQ(decode(encodePng({0x10}, 2, 1, SPNG_COLOR_TYPE_INDEXED, 4, pal)).pixels,
            (Bytes{40, 50, 60, 1, 2, 3}));
}

TEST(ImageTransform, SameSizeIsACopy) {
  ImageTransform t;
  t.img_size = t.resize_size = 24;
  const Bytes px = pattern(24, 24);
  for (TransformKind k : {TransformKind::kAct, TransformKind::kTorchvision}) {
    t.kind = k;
    for (Interp i : {Interp::kNearest, Interp::kBilinear, Interp::kBicubic, Interp::kLanczos}) {
      t.interp = i;
      const Bytes out = run(encodePng(px, 24, 24, SPNG_COLOR_TYPE_TRUECOLOR, 8), t, kNoAugment);
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 24 * 24; ++p) ASSERT_EQ(out[c * 576 + p], px[p * 3 + c]);
    }
  }
}

// Resizing only the kept window equals resizing everything and cropping.
TEST(ImageResize, WindowEqualsFullThenCrop) {
  const int w = 57, h = 41, ow = 30, oh = 23;
  Bytes px = pattern(w, h);
  px.resize(px.size() + 16);
  const RgbSource src{px.data(), w * 3, 0, 0, w, h};
  const ResizeBox box{0, 0, float(w), float(h)};
  for (Interp i : {Interp::kNearest, Interp::kBilinear, Interp::kBicubic, Interp::kLanczos}) {
    Bytes full(3 * ow * oh), part(3 * 10 * 8);
    resizeRgbToChw(src, box, ow, oh, i, {0, 0, ow, oh}, {full.data(), ow, ow * oh});
    resizeRgbToChw(src, box, ow, oh, i, {7, 5, 10, 8}, {part.data(), 10, 80});
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 10; ++x)
          ASSERT_EQ(part[c * 80 + y * 10 + x], full[c * ow * oh + (y + 5) * ow + x + 7]);
  }
}

TEST(ImageTransform, DeterministicPerSeedAndFlip) {
  const Bytes jpg = encodeJpeg(pattern(120, 90), 120, 90, TJPF_RGB, TJSAMP_420);
  ImageTransform t;
  t.img_size = 32;
  for (TransformKind k : {TransformKind::kAct, TransformKind::kTorchvision}) {
    t.kind = k;
    t.flip = true;
    EXPECT_EQ(run(jpg, t, 11), run(jpg, t, 11));
    EXPECT_NE(run(jpg, t, 11), run(jpg, t, 12));
    int flipped = 0;
    for (uint64_t seed = 0; seed < 16; ++seed) {
      t.flip = true;
      const Bytes a = run(jpg, t, seed);
      t.flip = false;
      const Bytes b = run(jpg, t, seed);  // same crop: the flip is drawn last
      if (a == b) continue;
      ++flipped;
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            ASSERT_EQ(a[c * 1024 + y * 32 + x], b[c * 1024 + y * 32 + 31 - x]);
    }
    EXPECT_GT(flipped, 2);
    EXPECT_LT(flipped, 14);
  }
}

// Decode workers call the transform concurrently (thread_local scratch).
TEST(ImageTransform, ConcurrentCallsMatchSerial) {
  const Bytes jpg = encodeJpeg(pattern(160, 120), 160, 120, TJPF_RGB, TJSAMP_420);
  const Bytes png = encodePng(pattern(90, 70), 90, 70, SPNG_COLOR_TYPE_TRUECOLOR, 8);
  ImageTransform t;
  t.img_size = 48;
  std::vector<Bytes> serial;
  for (uint64_t s = 0; s < 32; ++s) serial.push_back(run(s % 2 ? jpg : png, t, s));
  std::vector<std::thread> pool;
  std::vector<int> bad(4, 0);
  for (int w = 0; w < 4; ++w)
    pool.emplace_back([&, w] {
      for (int rep = 0; rep < 5; ++rep)
        for (uint64_t s = static_cast<uint64_t>(w); s < 32; s += 4)
          bad[w] += run(s % 2 ? jpg : png, t, s) != serial[s];
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

TEST(ImageTransform, BgrSwapsPlanes) {
  const Bytes png = encodePng(pattern(50, 40), 50, 40, SPNG_COLOR_TYPE_TRUECOLOR, 8);
  ImageTransform t;
  t.img_size = 16;
  t.resize_size = 20;
  const Bytes rgb = run(png, t, kNoAugment);
  t.bgr = true;
  const Bytes bgr = run(png, t, kNoAugment);
  EXPECT_TRUE(std::equal(rgb.begin(), rgb.begin() + 256, bgr.begin() + 512));
  EXPECT_TRUE(std::equal(rgb.begin() + 256, rgb.begin() + 512, bgr.begin() + 256));
}

TEST(ImageTransform, ErrorsNameTheFile) {
  ImageTransform t;
  t.img_size = 8;
  const Bytes jpg = encodeJpeg(pattern(37, 29), 37, 29, TJPF_RGB, TJSAMP_420);
  t.max_pixels = 1000;
  const std::string bomb = errorOf(jpg, t, "bomb.jpg");
  EXPECT_NE(bomb.find("bomb.jpg"), std::string::npos) << bomb;
  EXPECT_NE(bomb.find("37 x 29 = 1073"), std::string::npos) << bomb;
  EXPECT_NE(bomb.find("1000"), std::string::npos) << bomb;
  t.max_pixels = 1073;
  EXPECT_EQ(errorOf(jpg, t, "ok.jpg"), "no error");
  const Bytes cut(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() * 2 / 3));
  const std::string trunc = errorOf(cut, t, "cut.jpg");
  EXPECT_NE(trunc.find("cut.jpg"), std::string::npos) << trunc;
  EXPECT_NE(trunc.find("truncated"), std::string::npos) << trunc;
  const Bytes png = encodePng(pattern(9, 9), 9, 9, SPNG_COLOR_TYPE_TRUECOLOR, 8);
  const std::string pcut = errorOf(Bytes(png.begin(), png.end() - 30), t, "cut.png");
  EXPECT_NE(pcut.find("cut.png"), std::string::npos) << pcut;
  const std::string gif = errorOf({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0}, t, "x.gif");
  EXPECT_NE(gif.find("x.gif: unsupported or corrupt image"), std::string::npos) << gif;
  const std::string bad = errorOf({0xFF, 0xD8, 0xFF, 0x00, 0x12}, t, "bad.jpg");
  EXPECT_NE(bad.find("bad.jpg"), std::string::npos) << bad;
  Bytes out(3 * 64);
  try {
    loadImageSample("/nonexistent/img.png", t, kNoAugment, out.data());
    FAIL() << "no error";
  } catch (const BadSampleError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/img.png"), std::string::npos);
  }
}

TEST(ImageTransform, ParseInterp) {
  EXPECT_EQ(parseInterp("lanczos"), Interp::kLanczos);
  EXPECT_EQ(parseInterp("bilinear"), Interp::kBilinear);
  EXPECT_THROW(parseInterp("cubic"), ConfigError);
}

}  // namespace
}  // namespace slim::data
