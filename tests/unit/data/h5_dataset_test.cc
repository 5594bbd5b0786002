// HDF5 (x, y) files as a streaming Source: written with the checkpoint
// layer's h5 writer, read back row by row (types, shapes, threads, errors,
// memory).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include <unistd.h>

#include "checkpoint/h5.h"
#include "trainer/data/dataset.h"
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
Arr arr(const std::string& name, h5::Elem e, Shape s, const std::vector<T>& v) {
  std::vector<char> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return {name, e, std::move(s), std::move(b)};
}

void writeH5(const std::string& path, const std::vector<Arr>& arrays) {
  h5::Handle f = h5::createMemoryFile(path);
  for (const Arr& a : arrays) h5::writeDataset(f, a.name, a.elem, a.shape, a.bytes.data());
  std::vector<char> img = h5::fileImage(f, path);
  std::ofstream(path, std::ios::binary).write(img.data(), static_cast<std::streamsize>(img.size()));
}

std::string tmpPath(const std::string& tag) {
  return (fs::temp_directory_path() /
          ("slim_h5data_" + std::to_string(::getpid()) + "_" + tag + ".h5"))
      .string();
}

// Removes the file when the test ends, pass or fail.
struct TmpFile {
  explicit TmpFile(const std::string& tag) : path(tmpPath(tag)) {}
  ~TmpFile() { fs::remove(path); }
  std::string path;
};

// Pixel j of row i in the synthetic files.
uint8_t pixel(int64_t i, int64_t j) { return static_cast<uint8_t>((i * 131 + j * 7 + i / 256) & 255); }

std::vector<uint8_t> pixels(int64_t n, int64_t row) {
  std::vector<uint8_t> v(static_cast<size_t>(n * row));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < row; ++j) v[static_cast<size_t>(i * row + j)] = pixel(i, j);
  return v;
}

std::vector<int64_t> labelsFor(int64_t n) {
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = (i * 7) % 10;
  return y;
}

// Resident set size in bytes (/proc/self/statm, second field).
int64_t rssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST(Hdf5Source, Uint8NchwRowsLabelsAndNames) {
  TmpFile f("u8nchw");
  const std::vector<uint8_t> x = pixels(3, 8);
  writeH5(f.path, {arr("x", h5::Elem::kU8, {3, 2, 2, 2}, x),
                   arr<int64_t>("y", h5::Elem::kI64, {3}, {4, 9, 1})});
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(s->size(), 3);
  EXPECT_EQ(s->sampleShape(), (Shape{2, 2, 2}));
  EXPECT_EQ(s->pixelType(), DType::kU8);
  for (int64_t i : {2, 0, 1}) {
    std::vector<uint8_t> row(8);
    s->read(i, sampleSeed(1, 0, i), row.data());
    EXPECT_TRUE(std::equal(row.begin(), row.end(), x.begin() + i * 8)) << i;
  }
  EXPECT_EQ(s->label(1), 9);
  EXPECT_EQ(s->maxLabel().value, 9);
  EXPECT_EQ(s->maxLabel().where, f.path + ":y[1]");
  EXPECT_EQ(s->where(2), f.path + ":x[2]");
  EXPECT_EQ(s->describe(), "HDF5 " + f.path + " (3 samples, 2x2x2 uint8)");
  EXPECT_FALSE(s->expensive());
}

TEST(Hdf5Source, Uint8NhwIsOneChannel) {
  TmpFile f("u8nhw");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 3}, {0, 51, 255, 102, 204, 153}),
                   arr<int64_t>("y", h5::Elem::kI64, {2}, {4, 1})});
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(s->sampleShape(), (Shape{1, 1, 3}));
  uint8_t row[3];
  s->read(1, kNoAugment, row);
  EXPECT_EQ(row[0], 102);
  EXPECT_EQ(row[2], 153);
}

TEST(Hdf5Source, FloatPixelsReadBackExactly) {
  TmpFile f("f32");
  const std::vector<float> x = {0.0f, 1.0f / 3.0f, 0.1f, 1.0f, 0.5f, 1e-7f, 0.999f, 0.25f};
  writeH5(f.path, {arr("x", h5::Elem::kF32, {2, 4, 1, 1}, x),
                   arr<int32_t>("y", h5::Elem::kI32, {2}, {3, 0})});
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(s->pixelType(), DType::kF32);
  std::vector<float> row(4);
  s->read(1, kNoAugment, row.data());
  for (int j = 0; j < 4; ++j) EXPECT_EQ(row[j], x[4 + j]);  // not divided by 255
  EXPECT_EQ(s->label(0), 3);

  // float64 on disk: read as float32. (Close first: HDF5 shares a file that
  // is still open, and would not see it rewritten in place.)
  s.reset();
  const std::vector<double> d = {0.125, 0.75};
  writeH5(f.path, {arr("x", h5::Elem::kF64, {2, 1, 1}, d),
                   arr<int64_t>("y", h5::Elem::kI64, {2}, {0, 0})});
  s = openHdf5(f.path);
  EXPECT_EQ(s->pixelType(), DType::kF32);
  float v = 0;
  s->read(1, kNoAugment, &v);
  EXPECT_EQ(v, 0.75f);
  EXPECT_NE(s->describe().find("float32 from float64"), std::string::npos) << s->describe();
}

// (N, T) integer token ids (int64, or int32 read as int64) stay integers: a
// batch is (B, T) int64 exactly as stored, never normalised; images-only
// options and layouts are refused naming the file.
TEST(Hdf5Source, TokenIdsStayInt64) {
  TmpFile f("tokens"), g("tokens32");
  const std::vector<int64_t> ids = {5, 0, 999, 7, 3000000000LL, 1, 2, 3, 42};
  writeH5(f.path, {arr("x", h5::Elem::kI64, {3, 3}, ids),
                   arr<int64_t>("y", h5::Elem::kI64, {3}, {1, 0, 2})});
  writeH5(g.path, {arr<int32_t>("x", h5::Elem::kI32, {3, 3}, {5, 0, 999, 7, -1, 1, 2, 3, 42})});
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(s->pixelType(), DType::kI64);
  EXPECT_EQ(s->sampleShape(), (Shape{3}));
  EXPECT_EQ(s->describe(), "HDF5 " + f.path + " (3 samples, 3 int64 token ids)");
  Dataset d;
  d.source = s;
  EXPECT_TRUE(d.tokens());
  validate(d);
  Tensor x, y;
  fillBatch(d, {2, 1, 0}, x, y);
  ASSERT_EQ(x.dtype(), DType::kI64);
  ASSERT_EQ(x.shape(), (Shape{3, 3}));
  const std::vector<int64_t> want = {2, 3, 42, 7, 3000000000LL, 1, 5, 0, 999};
  for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(x.data<int64_t>()[k], want[k]) << k;
  EXPECT_EQ(y.data<int64_t>()[0], 2);
  d.mean = {0.5f};  // normalising token ids is an error naming the file
  try {
    validate(d);
    ADD_FAILURE() << "mean accepted for token ids";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(f.path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token ids"), std::string::npos) << e.what();
  }
  SourcePtr s32 = openHdf5(g.path);
  EXPECT_EQ(s32->pixelType(), DType::kI64);
  EXPECT_FALSE(s32->hasLabels());
  EXPECT_NE(s32->describe().find("int64 token ids from int32"), std::string::npos) << s32->describe();
  int64_t row[3];
  s32->read(1, kNoAugment, row);
  EXPECT_EQ(row[0], 7);
  EXPECT_EQ(row[1], -1);
  // Token ids with masks, or of another rank: refused naming the file.
  s32.reset();
  writeH5(g.path, {arr<int32_t>("x", h5::Elem::kI32, {1, 2, 2}, {1, 2, 3, 4})});
  EXPECT_THROW(openHdf5(g.path), DataError);
  writeH5(g.path, {arr<int64_t>("x", h5::Elem::kI64, {1, 4}, {1, 2, 3, 4}),
                   arr<uint8_t>("y", h5::Elem::kU8, {1, 2, 2}, {0, 1, 1, 0})});
  try {
    openHdf5(g.path);
    ADD_FAILURE() << "masks accepted for token ids";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(g.path), std::string::npos) << e.what();
  }
}

TEST(Hdf5Source, LabelsAsColumn) {
  TmpFile f("ycol");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {3, 1, 1}, {1, 2, 3}),
                   arr<int32_t>("y", h5::Elem::kI32, {3, 1}, {2, 7, 5})});
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(s->label(0), 2);
  EXPECT_EQ(s->label(2), 5);
  EXPECT_EQ(s->maxLabel().where, f.path + ":y[1]");
}

// Decode workers read rows in random and sequential order from several
// threads while the main thread's checkpoint writer uses the same wrapper.
TEST(Hdf5Source, ConcurrentReadsMatchStoredRowsWhileWriting) {
  TmpFile f("threads"), g("threads_other"), other("unrelated");
  constexpr int64_t kN = 1000, kRow = 3 * 32 * 32;  // ~3 MB: several chunks
  const std::vector<uint8_t> x = pixels(kN, kRow);
  writeH5(f.path, {arr("x", h5::Elem::kU8, {kN, 3, 32, 32}, x),
                   arr("y", h5::Elem::kI64, {kN}, labelsFor(kN))});
  writeH5(g.path, {arr("x", h5::Elem::kU8, {kN, 3, 32, 32}, x),
                   arr("y", h5::Elem::kI64, {kN}, labelsFor(kN))});
  SourcePtr s = openHdf5(f.path), s2 = openHdf5(g.path);

  std::atomic<int64_t> bad{0}, reads{0};
  std::atomic<bool> done{false};
  std::mutex m;
  std::string first_error;
  auto fail = [&](const std::string& msg) {
    ++bad;
    std::lock_guard<std::mutex> lock(m);
    if (first_error.empty()) first_error = msg;
  };
  auto reader = [&](unsigned seed) {
    try {
      std::mt19937 rng(seed);
      std::vector<int64_t> order(kN);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      // Random order, then a sequential run interleaved with another source
      // (same thread, two sources: the per-thread block must not mix them).
      for (int64_t k = 0; k < kN; ++k) order.push_back(k);
      std::vector<uint8_t> row(kRow);
      for (int64_t i : order) {
        const Source& src = i % 3 == 0 ? *s2 : *s;
        src.read(i, kNoAugment, row.data());
        ++reads;
        for (int64_t j = 0; j < kRow; ++j)
          if (row[static_cast<size_t>(j)] != pixel(i, j)) {
            fail("row " + std::to_string(i) + " differs at " + std::to_string(j));
            break;
          }
        if (src.label(i) != (i * 7) % 10) fail("label " + std::to_string(i));
      }
    } catch (const std::exception& e) {
      fail(e.what());
    }
  };
  std::thread writer([&] {
    try {
      const std::vector<float> w(50000, 1.5f);
      while (!done) writeH5(other.path, {arr("w", h5::Elem::kF32, {250, 200}, w)});
    } catch (const std::exception& e) {
      fail(std::string("writer: ") + e.what());
    }
  });
  std::vector<std::thread> readers;
  for (unsigned t = 0; t < 4; ++t) readers.emplace_back(reader, t + 1);
  for (auto& t : readers) t.join();
  done = true;
  writer.join();
  EXPECT_EQ(bad.load(), 0) << first_error;
  EXPECT_EQ(reads.load(), 4 * 2 * kN);
  EXPECT_EQ(h5::readArray(other.path, "w").f32()[123], 1.5f);
}

TEST(Hdf5Source, BadFilesNameTheFile) {
  TmpFile f("bad");
  auto expectError = [&](const std::string& part) {
    try {
      openHdf5(f.path);
      ADD_FAILURE() << "expected DataError for " << part;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(f.path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  const auto y2 = arr<int64_t>("y", h5::Elem::kI64, {2}, {0, 1});
  writeH5(f.path, {arr<float>("x", h5::Elem::kF32, {2, 1}, {1, 2}), y2});
  expectError("(N,C,H,W)");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1, 1, 1}, {1, 2}), y2});
  expectError("(N,C,H,W)");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<int64_t>("y", h5::Elem::kI64, {3}, {0, 1, 2})});
  expectError("3 labels");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<float>("y", h5::Elem::kF32, {2}, {0, 1})});
  expectError("integer");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<int64_t>("y", h5::Elem::kI64, {1, 2}, {0, 1})});
  expectError("'y' must be (N), (N,1) or (N,H,W)");
  writeH5(f.path, {arr<int32_t>("x", h5::Elem::kI32, {2, 1, 1}, {1, 2}), y2});
  expectError("'x' holds int32 token ids and must be (N,T)");  // integers other than uint8: ids
  writeH5(f.path, {arr<int8_t>("x", h5::Elem::kI8, {2, 1, 1}, {1, 2}), y2});
  expectError("'x' holds int8 token ids and must be (N,T), got [2, 1, 1]");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<int64_t>("y", h5::Elem::kI64, {2}, {0, -3})});
  expectError("negative label -3 at sample 1");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<int64_t>("y", h5::Elem::kI64, {2, 1, 2}, {0, 1, 1, 0})});
  expectError("masks 'y' are 1x2 but images 'x' are 1x1");
  writeH5(f.path, {y2});
  expectError("'x'");
  fs::remove(f.path);
  expectError("");
}

TEST(Hdf5Source, OutOfRangeIndexIsADataError) {
  TmpFile f("range");
  writeH5(f.path, {arr<uint8_t>("x", h5::Elem::kU8, {2, 1, 1}, {1, 2}),
                   arr<int64_t>("y", h5::Elem::kI64, {2}, {0, 1})});
  SourcePtr s = openHdf5(f.path);
  uint8_t v = 0;
  EXPECT_THROW(s->read(2, kNoAugment, &v), DataError);
  EXPECT_THROW(s->read(-1, kNoAugment, &v), DataError);
  EXPECT_THROW(s->label(2), DataError);
}

// Opening reads only the labels; rows are read on demand: 3 random rows of a
// 24.6 MB uint8 `x` read 3 rows and leave RSS far below the dataset's size.
TEST(Hdf5Source, OpenAndReadDoNotLoadX) {
  TmpFile f("big");
  constexpr int64_t kN = 2000, kRow = 3 * 64 * 64;
  {
    const std::vector<uint8_t> x = pixels(kN, kRow);
    writeH5(f.path, {arr("x", h5::Elem::kU8, {kN, 3, 64, 64}, x),
                     arr("y", h5::Elem::kI64, {kN}, labelsFor(kN))});
  }
  const int64_t rss0 = rssBytes();
  const uint64_t read0 = h5::detail::rowBytesRead();
  SourcePtr s = openHdf5(f.path);
  EXPECT_EQ(h5::detail::rowBytesRead(), read0);
  std::vector<uint8_t> row(kRow);
  for (int64_t i : {1500, 7, 999}) {
    s->read(i, kNoAugment, row.data());
    EXPECT_EQ(row[100], pixel(i, 100));
  }
  const uint64_t random_bytes = h5::detail::rowBytesRead() - read0;
  const int64_t grown = rssBytes() - rss0;
  EXPECT_EQ(random_bytes, 3u * kRow);
  EXPECT_LT(grown, int64_t{8} << 20) << "x is " << kN * kRow << " bytes";
  // A sequential run reads one block of about 1 MiB, not the rest of x.
  for (int64_t i = 10; i < 20; ++i) s->read(i, kNoAugment, row.data());
  const uint64_t seq_bytes = h5::detail::rowBytesRead() - read0 - random_bytes;
  EXPECT_LE(seq_bytes, (uint64_t{1} << 20) + kRow);
  EXPECT_EQ(row[5], pixel(19, 5));
  std::printf("[ info ] x %lld bytes; open + 3 random rows: %llu bytes read, RSS +%lld bytes; "
              "10 sequential rows: %llu bytes read\n",
              static_cast<long long>(kN * kRow), static_cast<unsigned long long>(random_bytes),
              static_cast<long long>(grown), static_cast<unsigned long long>(seq_bytes));
}

TEST(H5ReadRows, RangesTypesAndErrors) {
  TmpFile f("rows");
  writeH5(f.path, {arr<int32_t>("a", h5::Elem::kI32, {4, 2}, {0, 1, 2, 3, 4, 5, 300, -1}),
                   arr<float>("s", h5::Elem::kF32, {}, {1.0f})});
  h5::Handle file = h5::openFileReadOnly(f.path);
  h5::Handle a = h5::openDataset(file, "a", size_t{1} << 20);
  const h5::StoredType t = h5::storedType(a);
  EXPECT_EQ(t.cls, h5::StoredType::Class::kInteger);
  EXPECT_TRUE(t.is_signed);
  EXPECT_EQ(t.bytes, 4u);
  EXPECT_EQ(t.name, "int32");
  int64_t rows[4];
  h5::readRows(a, 1, 2, h5::Elem::kI64, rows, sizeof rows);
  EXPECT_EQ(rows[0], 2);
  EXPECT_EQ(rows[3], 5);
  uint8_t u8[2];
  h5::readRows(a, 3, 1, h5::Elem::kU8, u8, sizeof u8);  // saturating conversion
  EXPECT_EQ(u8[0], 255);
  EXPECT_EQ(u8[1], 0);
  h5::readRows(a, 4, 0, h5::Elem::kU8, nullptr, 0);
  EXPECT_THROW(h5::readRows(a, 3, 2, h5::Elem::kI64, rows, sizeof rows), CheckpointError);
  EXPECT_THROW(h5::readRows(a, 0, 1, h5::Elem::kI64, rows, sizeof rows), Error);  // size
  h5::Handle s = h5::openDataset(file, "s");
  EXPECT_EQ(h5::storedType(s).name, "float32");
  float v = 0;
  EXPECT_THROW(h5::readRows(s, 0, 1, h5::Elem::kF32, &v, sizeof v), CheckpointError);
}

TEST(SampleSeed, PureAndNeverNoAugment) {
  EXPECT_EQ(sampleSeed(7, 2, 11), sampleSeed(7, 2, 11));
  EXPECT_NE(sampleSeed(7, 2, 11), sampleSeed(7, 3, 11));
  EXPECT_NE(sampleSeed(7, 2, 11), sampleSeed(7, 2, 12));
  for (int64_t i = 0; i < 1000; ++i) EXPECT_NE(sampleSeed(0, 0, i), kNoAugment);
}

}  // namespace
}  // namespace slim::data
