// Tests of the HDF5 wrapper: readArray for data sets, attributes, error text,
// silenced HDF5 stderr output and reversible name escaping.
#include "h5/h5.h"

#include <gtest/gtest.h>

#include <fstream>

#include "checkpoint/schema.h"
#include "state_fixture.h"

namespace slim {
namespace {

/// Writes a file with datasets built by `fill` via the in-memory writer.
template <class Fn>
void writeFile(const std::filesystem::path& path, Fn&& fill) {
  h5::Handle f = h5::createMemoryFile(path.string());
  fill(f);
  const std::vector<char> img = h5::fileImage(f, "test");
  std::ofstream(path, std::ios::binary).write(img.data(), static_cast<std::streamsize>(img.size()));
}

TEST(H5ReadArray, ConvertsFloatUint8AndIntegers) {
  test::ScratchDir dir;
  const auto path = dir.path / "data.h5";
  const std::vector<uint8_t> pixels = {0, 1, 128, 255, 7, 9};
  const std::vector<int32_t> labels = {3, -1, 9};
  const std::vector<double> f64 = {0.5, -2.25};
  const std::vector<float> f32 = {1.5f, -3.0f, 1e-30f, 4.0f};
  writeFile(path, [&](h5::Handle& f) {
    h5::writeDataset(f, "x", h5::Elem::kU8, {3, 2}, pixels.data());
    h5::writeDataset(f, "y", h5::Elem::kI32, {3}, labels.data());
    h5::Handle g = h5::createGroup(f, "train");
    h5::writeDataset(g, "d", h5::Elem::kF64, {2}, f64.data());
    h5::writeDataset(g, "f", h5::Elem::kF32, {2, 2}, f32.data());
  });
  Tensor x = h5::readArray(path.string(), "x");
  ASSERT_EQ(x.dtype(), DType::kF32);
  ASSERT_EQ(x.shape(), (Shape{3, 2}));
  for (size_t i = 0; i < pixels.size(); ++i) EXPECT_EQ(x.f32()[i], static_cast<float>(pixels[i]));
  Tensor y = h5::readArray(path.string(), "y");
  ASSERT_EQ(y.dtype(), DType::kI64);
  ASSERT_EQ(y.shape(), (Shape{3}));
  for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(y.data<int64_t>()[i], labels[i]);
  Tensor d = h5::readArray(path.string(), "/train/d");
  EXPECT_EQ(d.dtype(), DType::kF32);
  EXPECT_EQ(d.f32()[1], -2.25f);
  Tensor f32t = h5::readArray(path.string(), "train/f");
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(f32t.f32()[i], f32[i]);
}

TEST(H5ReadArray, ErrorsNameFileAndDatasetAndStaySilent) {
  test::ScratchDir dir;
  const auto path = dir.path / "data.h5";
  const std::vector<float> v = {1, 2};
  writeFile(path, [&](h5::Handle& f) { h5::writeDataset(f, "x", h5::Elem::kF32, {2}, v.data()); });
  testing::internal::CaptureStderr();
  try {
    h5::readArray(path.string(), "labels");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("labels"), std::string::npos) << msg;
    EXPECT_NE(msg.find("H5Dopen2"), std::string::npos) << msg;  // the failing call
    EXPECT_NE(msg.find("doesn't exist"), std::string::npos) << msg;  // HDF5's own stack text
  }
  EXPECT_THROW(h5::readArray((dir.path / "none.h5").string(), "x"), DataError);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("HDF5-DIAG"), std::string::npos) << "HDF5 printed to stderr:\n" << err;
}

TEST(H5Attributes, RoundTripAndTypeMismatch) {
  test::ScratchDir dir;
  const auto path = dir.path / "a.h5";
  const std::string big(100000, 'y');  // larger than HDF5's 64 KiB compact limit
  writeFile(path, [&](h5::Handle& f) {
    h5::writeAttr(f, "i", int64_t{-42});
    h5::writeAttr(f, "u", ~uint64_t{0});
    h5::writeAttr(f, "d", 0.1);
    h5::writeAttr(f, "s", std::string("hello"));
    h5::writeAttr(f, "empty", std::string());
    h5::writeAttr(f, "big", big);
  });
  h5::Handle f = h5::openFileReadOnly(path.string());
  EXPECT_EQ(h5::readAttrI64(f, "i"), -42);
  EXPECT_EQ(h5::readAttrU64(f, "u"), ~uint64_t{0});
  EXPECT_EQ(h5::readAttrF64(f, "d"), 0.1);
  EXPECT_EQ(h5::readAttrStr(f, "s"), "hello");
  EXPECT_EQ(h5::readAttrStr(f, "empty"), "");
  EXPECT_EQ(h5::readAttrStr(f, "big"), big);
  EXPECT_EQ(h5::listAttrs(f), (std::vector<std::string>{"big", "d", "empty", "i", "s", "u"}));
  EXPECT_EQ(h5::attrElem(f, "u"), h5::Elem::kU64);
  EXPECT_TRUE(h5::isStringAttr(f, "s"));
  try {
    h5::readAttrI64(f, "s");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("expected an integer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(h5::readAttrF64(f, "missing"), CheckpointError);
}

TEST(H5Schema, EscapingIsReversibleAndLinkSafe) {
  const std::vector<std::string> names = {"/layer1/Conv_output_0", "conv1.weight", ".", "..", "%", "%2F",
                                          "a/b%c", std::string("nul\0x", 5), "plain"};
  for (const std::string& n : names) {
    const std::string link = checkpoint::escapeName(n);
    EXPECT_EQ(link.find('/'), std::string::npos) << link;
    EXPECT_EQ(link.find('\0'), std::string::npos) << link;
    EXPECT_NE(link, ".");
    EXPECT_EQ(checkpoint::unescapeName(link), n);
  }
  EXPECT_EQ(checkpoint::escapeName("/layer1/Conv_output_0"), "%2Flayer1%2FConv_output_0");
  EXPECT_EQ(checkpoint::escapeName("conv1.weight"), "conv1.weight");
  EXPECT_THROW(checkpoint::escapeName(""), CheckpointError);
  EXPECT_THROW(checkpoint::unescapeName("bad%2"), CheckpointError);
  EXPECT_THROW(checkpoint::unescapeName("bad%zz"), CheckpointError);
}

}  // namespace
}  // namespace slim
