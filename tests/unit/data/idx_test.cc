// IDX reader: real Fashion-MNIST, small gz/plain files written here, and
// corrupt / truncated / mismatched files; batch normalisation.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "trainer/data/idx.h"

namespace slim::data {
namespace {

namespace fs = std::filesystem;
const std::string kFashion = "/usr/share/datasets/fashion-mnist/";

std::vector<unsigned char> idxBytes(uint32_t magic, std::vector<uint32_t> dims,
                                    const std::vector<unsigned char>& data) {
  std::vector<unsigned char> b;
  auto put32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void writeFile(const std::string& path, const std::vector<unsigned char>& b,
               bool gz) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())),
              static_cast<int>(b.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), b.size());
  }
}

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("slim_idx_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    // 3 images of 2x2 with pixel values 10*i + k, labels 7, 0, 3.
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) pixels_.push_back(static_cast<unsigned char>(10 * i + k));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  std::vector<unsigned char> pixels_;
  std::vector<unsigned char> labels_{7, 0, 3};
};

void expectSmall(const Dataset& d) {
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.sampleShape(), (Shape{1, 2, 2}));
  EXPECT_EQ(d.source->pixelType(), DType::kU8);
  uint8_t px[4];
  d.source->read(2, kNoAugment, px);
  EXPECT_EQ(px[3], 23);
  EXPECT_EQ(d.source->label(0), 7);
  EXPECT_EQ(d.source->label(2), 3);
  EXPECT_EQ(d.source->maxLabel().value, 7);
}

TEST_F(IdxFiles, ReadsPlainAndGzipped) {
  for (bool gz : {false, true}) {
    std::string im = path(gz ? "im.gz" : "im"), lb = path(gz ? "lb.gz" : "lb");
    writeFile(im, idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), gz);
    writeFile(lb, idxBytes(kIdxLabelsMagic, {3}, labels_), gz);
    SCOPED_TRACE(gz ? "gz" : "plain");
    expectSmall(loadIdx(im, lb));
  }
}

// Runs loadIdx and checks the DataError message contains every `parts`.
void expectDataError(const std::string& im, const std::string& lb,
                     const std::vector<std::string>& parts) {
  try {
    loadIdx(im, lb);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message lacks '" << p << "': " << e.what();
  }
}

TEST_F(IdxFiles, WrongMagicNamesFileAndBothValues) {
  writeFile(path("im"), idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), false);
  writeFile(path("lb"), idxBytes(kIdxLabelsMagic, {3}, labels_), false);
  // Swapped arguments: the labels file is read as images.
  expectDataError(path("lb"), path("im"), {path("lb"), "0x803", "0x801"});
}

TEST_F(IdxFiles, TruncatedReportsOffset) {
  auto b = idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_);
  b.resize(b.size() - 5);  // header 16 bytes + 7 of 12 pixels
  for (bool gz : {false, true}) {
    writeFile(path("im"), b, gz);
    writeFile(path("lb"), idxBytes(kIdxLabelsMagic, {3}, labels_), false);
    expectDataError(path("im"), path("lb"), {path("im"), "truncated", "offset 23"});
  }
  writeFile(path("im"), {0, 0, 8}, false);  // not even a magic number
  expectDataError(path("im"), path("lb"), {path("im"), "truncated", "offset 3"});
}

TEST_F(IdxFiles, CountMismatchAndMissingFileAndCorruptGzip) {
  writeFile(path("im"), idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), false);
  writeFile(path("lb"), idxBytes(kIdxLabelsMagic, {2}, {1, 2}), false);
  expectDataError(path("im"), path("lb"), {path("im"), path("lb"), "3 images", "2 labels"});
  expectDataError(path("nope"), path("lb"), {path("nope"), "cannot open"});
  // A gzip file whose compressed body is damaged.
  writeFile(path("im.gz"), idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), true);
  auto size = fs::file_size(path("im.gz"));
  {
    std::fstream f(path("im.gz"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\xff').put('\xff').put('\xff');
  }
  EXPECT_THROW(loadIdx(path("im.gz"), path("lb")), DataError);
}

// The gzip trailer's CRC-32 and length are checked: a flipped CRC byte or a
// missing trailer is an error, not data (zlib only checks them when the
// stream is read to its end).
TEST_F(IdxFiles, BadGzipTrailerIsAnError) {
  writeFile(path("lb"), idxBytes(kIdxLabelsMagic, {3}, labels_), false);
  writeFile(path("im.gz"), idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), true);
  const auto size = fs::file_size(path("im.gz"));
  EXPECT_EQ(loadIdx(path("im.gz"), path("lb")).size(), 3);
  {
    std::fstream f(path("im.gz"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 8));  // first CRC byte
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(size - 8));
    f.put(static_cast<char>(c ^ 0x01));
  }
  expectDataError(path("im.gz"), path("lb"), {path("im.gz"), "CRC"});
  fs::resize_file(path("im.gz"), size - 8);  // trailer cut off
  expectDataError(path("im.gz"), path("lb"), {path("im.gz")});
}

TEST_F(IdxFiles, FillBatchNormalisesAndReusesStorage) {
  writeFile(path("im"), idxBytes(kIdxImagesMagic, {3, 2, 2}, pixels_), false);
  writeFile(path("lb"), idxBytes(kIdxLabelsMagic, {3}, labels_), false);
  Dataset d = loadIdx(path("im"), path("lb"));
  d.mean = {0.5f};
  d.std = {0.25f};
  Tensor x, y;
  fillBatch(d, {2, 0}, x, y);
  ASSERT_EQ(x.shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(y.data<int64_t>()[0], 3);
  EXPECT_EQ(y.data<int64_t>()[1], 7);
  EXPECT_FLOAT_EQ(x.f32()[1], (21.f / 255.f - 0.5f) / 0.25f);
  EXPECT_FLOAT_EQ(x.f32()[4 + 3], (3.f / 255.f - 0.5f) / 0.25f);
  const void* storage = x.raw();
  fillBatch(d, {1}, x, y);
  EXPECT_EQ(x.raw(), storage);
  EXPECT_FLOAT_EQ(x.f32()[0], (10.f / 255.f - 0.5f) / 0.25f);
  EXPECT_THROW(fillBatch(d, {3}, x, y), DataError);
  d.mean = {0.1f, 0.2f};  // two values for one channel
  EXPECT_THROW(validate(d), DataError);
}

TEST(FashionMnist, RealFilesParseWithKnownStatistics) {
  const std::string im = kFashion + "train-images-idx3-ubyte.gz";
  if (!fs::exists(im)) GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashion;
  Dataset train = loadIdx(im, kFashion + "train-labels-idx1-ubyte.gz");
  Dataset test = loadIdx(kFashion + "t10k-images-idx3-ubyte.gz",
                         kFashion + "t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.sampleShape(), (Shape{1, 28, 28}));
  EXPECT_EQ(train.source->maxLabel().value, 9);
  EXPECT_EQ(test.source->maxLabel().value, 9);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t i = 0; i < train.size(); ++i) per_class[train.source->label(i)]++;
  for (int64_t c : per_class) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced
  double sum = 0, sq = 0;
  const Tensor& images = dynamic_cast<const TensorSource&>(*train.source).images();
  const uint8_t* p = images.data<uint8_t>();
  for (int64_t i = 0; i < images.numel(); ++i) {
    double v = p[i] / 255.0;
    sum += v;
    sq += v * v;
  }
  const double n = static_cast<double>(images.numel());
  const double mean = sum / n, stdv = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.2860, 5e-4);
  EXPECT_NEAR(stdv, 0.3530, 5e-4);
}


// Every uint8 pixel value normalises with exactly three roundings, (x * scale
// - mean) / std, never a fused multiply-add: compilers contracted it for some
// instruction sets and not others (AVX2 vs AVX-512 builds then trained on
// different inputs). Fashion-MNIST's statistics, where the two differ.
TEST(FillBatch, NormalisationRoundsAsWritten) {
  Tensor images({256, 1, 1, 1}, DType::kU8), labels({256}, DType::kI64);
  std::vector<int64_t> all(256);
  for (int v = 0; v < 256; ++v) {
    images.data<uint8_t>()[v] = static_cast<uint8_t>(v);
    labels.data<int64_t>()[v] = 0;
    all[v] = v;
  }
  Dataset d = tensorDataset(images, labels, "ramp");
  d.mean = {0.2860f};
  d.std = {0.3530f};
  Tensor x, y;
  fillBatch(d, all, x, y);
  int mismatches = 0;
  for (int v = 0; v < 256; ++v) {
    volatile float scaled = static_cast<float>(v) * d.pixel_scale;  // rounded here
    volatile float centred = scaled - d.mean[0];
    const float want = centred / d.std[0];
    if (std::memcmp(&want, x.f32() + v, sizeof(float)) != 0) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace slim::data
