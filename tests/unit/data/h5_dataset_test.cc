// HDF5 (x, y) data sets written with the checkpoint layer's h5 writer.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include <unistd.h>

#include "checkpoint/h5.h"
#include "trainer/data/h5_dataset.h"

namespace slim::data {
namespace {

namespace fs = std::filesystem;

// Writes datasets {name -> (elem, shape, bytes)} into an HDF5 file at `path`.
struct Arr {
  std::string name;
  h5::Elem elem;
  Shape shape;
  std::vector<char> bytes;
};
template <class T>
Arr arr(const std::string& name, h5::Elem e, Shape s, std::vector<T> v) {
  std::vector<char> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return {name, e, std::move(s), std::move(b)};
}

void writeH5(const std::string& path, const std::vector<Arr>& arrays) {
  h5::Handle f = h5::createMemoryFile(path);
  for (const Arr& a : arrays) h5::writeDataset(f, a.name, a.elem, a.shape, a.bytes.data());
  std::vector<char> img = h5::fileImage(f, path);
  std::ofstream(path, std::ios::binary).write(img.data(), img.size());
}

std::string tmpPath(const std::string& tag) {
  return (fs::temp_directory_path() /
          ("slim_h5data_" + std::to_string(::getpid()) + "_" + tag + ".h5"))
      .string();
}

TEST(Hdf5Dataset, Uint8PixelsNhwAndInt64Labels) {
  const std::string p = tmpPath("u8");
  writeH5(p, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 3}, {0, 51, 255, 102, 204, 153}),
              arr<int64_t>("y", h5::Elem::kI64, {2}, {4, 1})});
  Dataset d = loadHdf5(p);
  fs::remove(p);
  ASSERT_EQ(d.images.shape(), (Shape{2, 1, 1, 3}));
  d.mean = {0.5f};
  d.std = {0.5f};
  Tensor x, y;
  fillBatch(d, {1, 0}, x, y);
  EXPECT_EQ(y.data<int64_t>()[0], 1);
  EXPECT_FLOAT_EQ(x.f32()[0], (102.f / 255.f - 0.5f) / 0.5f);
  EXPECT_FLOAT_EQ(x.f32()[5], (255.f / 255.f - 0.5f) / 0.5f);
}

TEST(Hdf5Dataset, FloatNchwWithUnitScale) {
  const std::string p = tmpPath("f32");
  writeH5(p, {arr<float>("x", h5::Elem::kF32, {1, 2, 1, 1}, {0.25f, 0.75f}),
              arr<int32_t>("y", h5::Elem::kI32, {1}, {3})});
  Dataset d = loadHdf5(p, 1.0f);
  fs::remove(p);
  d.mean = {0.0f, 0.5f};
  Tensor x, y;
  fillBatch(d, {0}, x, y);
  EXPECT_EQ(x.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_FLOAT_EQ(x.f32()[0], 0.25f);
  EXPECT_FLOAT_EQ(x.f32()[1], 0.25f);
  EXPECT_EQ(y.data<int64_t>()[0], 3);
}

TEST(Hdf5Dataset, BadFilesNameTheFile) {
  const std::string p = tmpPath("bad");
  auto expectError = [&](const std::string& part) {
    try {
      loadHdf5(p);
      FAIL() << "expected DataError";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  writeH5(p, {arr<float>("x", h5::Elem::kF32, {2, 1}, {1, 2}),
              arr<int64_t>("y", h5::Elem::kI64, {2}, {0, 1})});
  expectError("(N,C,H,W)");
  writeH5(p, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
              arr<int64_t>("y", h5::Elem::kI64, {3}, {0, 1, 2})});
  expectError("3 labels");
  writeH5(p, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
              arr<float>("y", h5::Elem::kF32, {2}, {0, 1})});
  expectError("integer");
  writeH5(p, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2})});
  expectError("'y'");
  fs::remove(p);
  expectError("");
}

}  // namespace
}  // namespace slim::data
