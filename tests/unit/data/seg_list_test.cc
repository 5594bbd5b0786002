// Segmentation lists (`image mask` lines, PaddleSeg's format): PNG masks
// decode to class ids (palette indices, gray values of any depth), and the
// mask goes through exactly the image's crop, resize and flip: with NEAREST
// images whose gray value encodes the class, every output pixel's value
// matches its mask value, for training seeds and the evaluation transform.
#include <gtest/gtest.h>
#include <spng.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "trainer/data/dataset.h"
#include "trainer/data/image_decode.h"
#include "trainer/data/image_transform.h"
#include "trainer/data/seg_list.h"

namespace slim::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

Bytes png(const Bytes& data, int w, int h, int color_type, int depth, int palette = 0) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(w);
  ihdr.height = static_cast<uint32_t>(h);
  ihdr.color_type = static_cast<uint8_t>(color_type);
  ihdr.bit_depth = static_cast<uint8_t>(depth);
  spng_set_ihdr(ctx, &ihdr);
  if (palette > 0) {
    spng_plte p{};
    p.n_entries = static_cast<uint32_t>(palette);
    for (int i = 0; i < palette; ++i)
      p.entries[i] = {static_cast<uint8_t>(i * 3), static_cast<uint8_t>(255 - i), 7, 255};
    spng_set_plte(ctx, &p);
  }
  EXPECT_EQ(spng_encode_image(ctx, data.data(), data.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
  size_t size = 0;
  int err = 0;
  auto* buf = static_cast<uint8_t*>(spng_get_png_buffer(ctx, &size, &err));
  Bytes out(buf, buf + size);
  std::free(buf);
  spng_ctx_free(ctx);
  return out;
}

MaskImage mask(const Bytes& b) { return decodeMaskPng(b.data(), b.size(), "m.png", 0); }

TEST(MaskPng, PaletteIndicesAndGrayValues) {
  EXPECT_EQ(mask(png({0, 3, 255, 1}, 2, 2, SPNG_COLOR_TYPE_INDEXED, 8, 256)).values,
            (std::vector<uint16_t>{0, 3, 255, 1}));
  EXPECT_EQ(mask(png({4, 0, 9}, 3, 1, SPNG_COLOR_TYPE_GRAYSCALE, 8)).values,
            (std::vector<uint16_t>{4, 0, 9}));
  // 4-bit gray: 0x3A, 0x50 -> 3, 10, 5 (the fourth nibble is padding).
  EXPECT_EQ(mask(png({0x3A, 0x50}, 3, 1, SPNG_COLOR_TYPE_GRAYSCALE, 4)).values,
            (std::vector<uint16_t>{3, 10, 5}));
  // 16-bit gray (spng encodes host-endian samples).
  const std::vector<uint16_t> wide = {258, 255};
  Bytes wb(4);
  std::memcpy(wb.data(), wide.data(), 4);
  EXPECT_EQ(mask(png(wb, 2, 1, SPNG_COLOR_TYPE_GRAYSCALE, 16)).values, wide);
  const Bytes rgb = png({1, 2, 3}, 1, 1, SPNG_COLOR_TYPE_TRUECOLOR, 8);
  try {
    mask(rgb);
    ADD_FAILURE() << "an RGB mask was accepted";
  } catch (const BadSampleError& e) {
    EXPECT_NE(std::string(e.what()).find("m.png: a segmentation mask must be a palette or "
                                         "grayscale PNG"), std::string::npos) << e.what();
  }
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0};
  EXPECT_THROW(mask(jpeg), BadSampleError);
}

struct TmpDir {
  TmpDir() : path(fs::temp_directory_path() / ("slim_seglist_" + std::to_string(::getpid()))) {
    fs::create_directories(path / "img");
  }
  ~TmpDir() { fs::remove_all(path); }
  void write(const std::string& name, const Bytes& b) const {
    std::ofstream(path / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  void text(const std::string& name, const std::string& s) const { std::ofstream(path / name) << s; }
  fs::path path;
};

// A W x H scene of classes 0..5 in blocks; the image's gray value is 40 x class.
void scene(int w, int h, int seed, Bytes* gray, Bytes* classes) {
  gray->resize(static_cast<size_t>(w * h));
  classes->resize(gray->size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int c = ((x / 3 + seed) * 7 + (y / 4) * 5 + x * y / 50) % 6;
      (*classes)[static_cast<size_t>(y * w + x)] = static_cast<uint8_t>(c);
      (*gray)[static_cast<size_t>(y * w + x)] = static_cast<uint8_t>(40 * c);
    }
}

TEST(SegList, MaskFollowsTheImageTransform) {
  TmpDir d;
  Bytes g, c;
  scene(37, 29, 0, &g, &c);
  d.write("img/a.png", png(g, 37, 29, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.write("a_mask.png", png(c, 37, 29, SPNG_COLOR_TYPE_INDEXED, 8, 6));
  scene(23, 41, 3, &g, &c);
  d.write("img/b.png", png(g, 23, 41, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.write("b_mask.png", png(c, 23, 41, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.text("train.txt", "img/a.png a_mask.png\n\nimg/b.png   b_mask.png\n");
  for (TransformKind kind : {TransformKind::kAct, TransformKind::kTorchvision}) {
    ImageTransform t;
    t.kind = kind;
    t.img_size = 16;
    t.resize_size = 20;
    t.interp = Interp::kNearest;
    t.scale_min = 0.3;
    SourcePtr s = openSegList((d.path / "train.txt").string(), "", t);
    ImageTransform still = t;
    still.flip = false;
    SourcePtr s_noflip = openSegList((d.path / "train.txt").string(), "", still);
    ASSERT_EQ(s->size(), 2);
    EXPECT_EQ(s->labelShape(), (Shape{16, 16}));
    EXPECT_EQ(s->where(1), (d.path / "train.txt").string() + ":3 (img/b.png)");
    int flips_seen = 0;
    for (int64_t i = 0; i < 2; ++i)
      for (uint64_t seed : {kNoAugment, uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{4},
                            uint64_t{5}, uint64_t{6}}) {
        Bytes img(3 * 16 * 16);
        std::vector<int64_t> lab(16 * 16);
        s->read(i, seed, img.data());
        s->readLabel(i, seed, lab.data());
        for (int p = 0; p < 256; ++p)
          ASSERT_EQ(img[p], 40 * lab[p]) << "sample " << i << " seed " << seed << " pixel " << p;
        // The same crop without the flip: equal, or mirrored when the draw flipped.
        std::vector<int64_t> same(16 * 16);
        s_noflip->readLabel(i, seed, same.data());
        bool mirrored = true;
        for (int y = 0; y < 16; ++y)
          for (int x = 0; x < 16; ++x) mirrored = mirrored && lab[y * 16 + x] == same[y * 16 + 15 - x];
        ASSERT_TRUE(lab == same || mirrored) << "sample " << i << " seed " << seed;
        flips_seen += lab != same;
      }
    EXPECT_GT(flips_seen, 0);
  }
}

TEST(SegList, PaddingIsIgnoredAndBatchesHoldMasks) {
  TmpDir d;
  Bytes g, c;
  scene(10, 10, 1, &g, &c);
  d.write("img/a.png", png(g, 10, 10, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.write("a_mask.png", png(c, 10, 10, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.text("val.txt", "img/a.png a_mask.png\n");
  ImageTransform t;
  t.kind = TransformKind::kTorchvision;
  t.img_size = 12;  // larger than the resized image: torchvision pads
  t.resize_size = 10;
  t.interp = Interp::kNearest;
  Dataset ds;
  ds.source = openSegList((d.path / "val.txt").string(), "", t);
  Tensor images, labels;
  fillBatch(ds, {0, 0}, images, labels);
  EXPECT_EQ(labels.shape(), (Shape{2, 12, 12}));
  EXPECT_EQ(labels.data<int64_t>()[0], kIgnoreLabel);    // corner: padding
  EXPECT_NE(labels.data<int64_t>()[13], kIgnoreLabel);   // (1, 1): the image
}

TEST(SegList, ErrorsNameTheLine) {
  TmpDir d;
  d.text("bad.txt", "a.png a_mask.png\nonly_one.png\n");
  try {
    openSegList((d.path / "bad.txt").string(), "", ImageTransform{});
    ADD_FAILURE() << "a one-field line was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2: expected `image_path mask_path`"),
              std::string::npos) << e.what();
  }
  d.text("empty.txt", "\n\n");
  EXPECT_THROW(openSegList((d.path / "empty.txt").string(), "", ImageTransform{}), DataError);
  Bytes g, c;
  scene(10, 10, 1, &g, &c);
  d.write("img/a.png", png(g, 10, 10, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.write("small_mask.png", png(Bytes(81, 1), 9, 9, SPNG_COLOR_TYPE_GRAYSCALE, 8));
  d.text("size.txt", "img/a.png small_mask.png\nimg/a.png missing.png\n");
  ImageTransform t;
  t.img_size = 8;
  t.resize_size = 8;
  SourcePtr s = openSegList((d.path / "size.txt").string(), "", t);
  std::vector<int64_t> lab(64);
  try {
    s->readLabel(0, kNoAugment, lab.data());
    ADD_FAILURE() << "a mask of another size was accepted";
  } catch (const BadSampleError& e) {
    EXPECT_NE(std::string(e.what()).find("size.txt:1 (img/a.png): "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mask is 9x9 but its image"), std::string::npos) << e.what();
  }
  try {
    s->readLabel(1, kNoAugment, lab.data());
    ADD_FAILURE() << "a missing mask was accepted";
  } catch (const BadSampleError& e) {
    EXPECT_NE(std::string(e.what()).find("size.txt:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.png: cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slim::data
