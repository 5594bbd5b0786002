// HDF5 segmentation data (`y` of shape (N, H, W): a class per pixel, 255
// ignored) and unlabelled data (`x` only): what the Source and the batch
// assembler give for them.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "h5/h5.h"
#include "trainer/data/dataset.h"
#include "trainer/data/h5_dataset.h"

namespace slim::data {
namespace {

namespace fs = std::filesystem;

struct TmpH5 {
  explicit TmpH5(const std::string& tag)
      : path((fs::temp_directory_path() /
              ("slim_h5masks_" + std::to_string(::getpid()) + "_" + tag + ".h5"))
                 .string()) {}
  ~TmpH5() { fs::remove(path); }
  // Writes (name, elem, shape, values) datasets, replacing the file.
  template <class X, class Y>
  void write(h5::Elem xe, Shape xs, const std::vector<X>& x, h5::Elem ye, Shape ys,
             const std::vector<Y>& y) const {
    h5::Handle f = h5::createMemoryFile(path);
    h5::writeDataset(f, "x", xe, xs, x.data());
    if (!ys.empty()) h5::writeDataset(f, "y", ye, ys, y.data());
    std::vector<char> img = h5::fileImage(f, path);
    std::ofstream(path, std::ios::binary)
        .write(img.data(), static_cast<std::streamsize>(img.size()));
  }
  std::string path;
};

TEST(Hdf5Masks, Uint8MasksReadAsInt64PerSample) {
  TmpH5 f("u8");
  // 3 samples of 1x2x3 pixels; masks with classes 0..3 and ignored pixels.
  std::vector<uint8_t> x(18);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>(10 * i);
  const std::vector<uint8_t> y = {0, 1, 2, 255, 1, 0,  3, 3, 0, 0, 255, 2,  1, 1, 1, 1, 1, 1};
  f.write(h5::Elem::kU8, {3, 1, 2, 3}, x, h5::Elem::kU8, {3, 2, 3}, y);
  SourcePtr s = openHdf5(f.path);
  EXPECT_TRUE(s->hasLabels());
  EXPECT_EQ(s->labelShape(), (Shape{2, 3}));
  // 255 is the ignore index, not a class: the largest class is 3 (y[1][0][0]).
  EXPECT_EQ(s->maxLabel().value, 3);
  EXPECT_EQ(s->maxLabel().where, f.path + ":y[1][0][0]");
  int64_t m[6];
  s->readLabel(1, kNoAugment, m);
  for (int k = 0; k < 6; ++k) EXPECT_EQ(m[k], y[6 + k]) << k;
  EXPECT_NE(s->describe().find("masks"), std::string::npos) << s->describe();

  // The batch assembler gives (B, H, W) labels in the batch's order.
  Dataset d;
  d.source = s;
  Tensor images, labels;
  fillBatch(d, {2, 0}, images, labels);
  EXPECT_EQ(labels.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(images.shape(), (Shape{2, 1, 2, 3}));
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(labels.data<int64_t>()[k], y[12 + k]);
    EXPECT_EQ(labels.data<int64_t>()[6 + k], y[k]);
  }
}

TEST(Hdf5Masks, Int64MasksAndErrors) {
  TmpH5 f("i64");
  const std::vector<float> x(8, 0.5f);
  f.write(h5::Elem::kF32, {2, 1, 2, 2}, x, h5::Elem::kI64, {2, 2, 2},
          std::vector<int64_t>{0, 1, 0, 1, 4, 0, 0, 0});
  {
    SourcePtr s = openHdf5(f.path);
    EXPECT_EQ(s->maxLabel().value, 4);
    EXPECT_EQ(s->maxLabel().where, f.path + ":y[1][0][0]");
  }  // closed before the file is rewritten
  // A negative class id names the sample and the pixel.
  f.write(h5::Elem::kF32, {2, 1, 2, 2}, x, h5::Elem::kI64, {2, 2, 2},
          std::vector<int64_t>{0, 1, 0, 1, 0, 0, -2, 0});
  try {
    openHdf5(f.path);
    ADD_FAILURE() << "a negative mask value was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("negative label -2 in mask y[1] at (1, 0)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Hdf5Masks, XOnlyIsUnlabelled) {
  TmpH5 f("xonly");
  f.write(h5::Elem::kU8, {2, 1, 1, 2}, std::vector<uint8_t>{1, 2, 3, 4}, h5::Elem::kU8, {},
          std::vector<uint8_t>{});
  SourcePtr s = openHdf5(f.path);
  EXPECT_FALSE(s->hasLabels());
  EXPECT_EQ(s->labelShape(), Shape{});
  EXPECT_EQ(s->maxLabel().value, -1);
  EXPECT_NE(s->describe().find("no labels"), std::string::npos) << s->describe();
  Dataset d;
  d.source = s;
  Tensor images, labels;
  fillBatch(d, {1, 0}, images, labels);
  EXPECT_EQ(labels.shape(), (Shape{2}));
  EXPECT_EQ(labels.data<int64_t>()[0], 0);
  EXPECT_FLOAT_EQ(images.f32()[0], 3.0f / 255.0f);
}

}  // namespace
}  // namespace slim::data
