// Round trip, determinism, external readability (h5py, h5dump) and
// validation of damaged checkpoint files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/schema.h"
#include "checkpoint/state_io.h"
#include "h5/h5.h"
#include "state_fixture.h"

namespace slim {
namespace {

using checkpoint::CheckpointManager;
using checkpoint::TrainingState;

std::string loadError(const std::filesystem::path& p) {
  try {
    CheckpointManager::load(p);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading " << p << " did not throw";
  return "";
}

std::filesystem::path saveOne(const std::filesystem::path& dir, const TrainingState& s) {
  return CheckpointManager(dir, 0).save(s);
}

std::string runCommand(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  for (size_t n; p && (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *rc = p ? ::pclose(p) : -1;
  return out;
}

TEST(CheckpointState, RoundTripIsBitExact) {
  test::ScratchDir dir;
  TrainingState s = test::makeState(1234);
  s.created_unix = 1700000000;
  const auto path = saveOne(dir.path, s);
  EXPECT_EQ(path.filename(), "ckpt-00001234.h5");
  TrainingState r = CheckpointManager::load(path);
  const auto diff = checkpoint::diffStates(s, r);
  EXPECT_TRUE(diff.empty()) << diff.front();
  EXPECT_EQ(r.created_unix, 1700000000);
  EXPECT_EQ(r.params.tensors.at("pact.alpha").shape(), Shape{});
  EXPECT_EQ(r.params.tensors.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(std::get<std::string>(r.schedule.attrs.at("empty")), "");
  EXPECT_EQ(r.seed, s.seed);
}

TEST(CheckpointState, EncodingIsDeterministicAndDiffFindsChanges) {
  const TrainingState s = test::makeState(7);
  const auto a = checkpoint::encodeState(s, "a", 99);
  const auto b = checkpoint::encodeState(test::makeState(7), "b", 99);
  EXPECT_TRUE(a == b) << "two encodings of the same state differ";
  TrainingState t = test::makeState(7);
  t.params.tensors["conv1.weight"] = t.params.tensors["conv1.weight"].clone();
  t.params.tensors["conv1.weight"].f32()[5] += 1.0f;
  t.schedule.attrs["gmp.ratio"] = 0.5;
  t.rng.words["sampler"][2] = 4;
  const auto diff = checkpoint::diffStates(s, t);
  ASSERT_EQ(diff.size(), 3u);
  EXPECT_NE(diff[0].find("params/conv1.weight"), std::string::npos) << diff[0];
  EXPECT_NE(diff[0].find("element 5"), std::string::npos) << diff[0];
  EXPECT_NE(diff[1].find("schedule/@gmp.ratio: 0.375 vs 0.5"), std::string::npos) << diff[1];
  EXPECT_NE(diff[2].find("rng/sampler: word 2: 3 vs 4"), std::string::npos) << diff[2];
}

/// Collects a streamed file in memory and records how it arrived.
struct VectorSink : h5::ByteSink {
  std::vector<char> bytes;
  size_t largest_write = 0;
  size_t writes = 0;
  int64_t fail_after = -1;  // throw once the file would exceed this many bytes
  void writeAt(uint64_t offset, const void* data, size_t n) override {
    if (fail_after >= 0 && offset + n > static_cast<uint64_t>(fail_after))
      SLIM_THROW(CheckpointError, "test sink: full at byte ", fail_after);
    if (bytes.size() < offset + n) bytes.resize(offset + n);
    std::memcpy(bytes.data() + offset, data, n);
    largest_write = std::max(largest_write, n);
    ++writes;
  }
  void readAt(uint64_t offset, void* out, size_t n) override {
    std::memset(out, 0, n);
    if (offset < bytes.size())
      std::memcpy(out, bytes.data() + offset, std::min<size_t>(n, bytes.size() - offset));
  }
  void resize(uint64_t size) override { bytes.resize(size); }
};

/// makeState plus multi-chunk tensors (edge chunks, every dtype) and a config
/// above 64 KiB (dense attribute storage): about 8 MB.
TrainingState largeState(int64_t step) {
  TrainingState s = test::makeState(step, 5);
  Rng rng(17);
  s.params.tensors["layer4.0.conv2.weight"] = test::randomTensor({512, 256, 3, 3}, rng);
  s.optimizer.tensors["layer4.0.conv2.weight/velocity"] = test::randomTensor({3, 701, 333}, rng);
  Tensor mask({1000, 1037}, DType::kU8);
  for (int64_t i = 0; i < mask.numel(); ++i)
    mask.data<uint8_t>()[i] = static_cast<uint8_t>(i % 3 != 0);
  s.masks.tensors["layer4.0.conv2.weight"] = mask;
  Tensor steps({300, 517}, DType::kI64);
  for (int64_t i = 0; i < steps.numel(); ++i) steps.data<int64_t>()[i] = i * 7919 - 5;
  s.buffers.tensors["counts"] = steps;
  s.rng.words["big"] = std::vector<uint64_t>(200000, 0x9E3779B97F4A7C15ull);
  s.config_yaml += std::string(100000, '#') + "\n";
  return s;
}

TEST(CheckpointState, StreamedEncodingEqualsTheInMemoryImage) {
  // encodeStateTo (the manager's path: HDF5 writes go straight to the file)
  // must give encodeState's bytes exactly (its H5Fget_file_image copy and
  // superblock repair), and must hand the file over piecewise: if a whole
  // image were built and copied again, the largest write would be the file.
  for (const TrainingState& s : {test::makeState(7), largeState(8)}) {
    const std::vector<char> image = checkpoint::encodeState(s, "a.h5", 99);
    VectorSink sink;
    const uint64_t size = checkpoint::encodeStateTo(s, "a.h5", 99, sink);
    EXPECT_EQ(size, image.size());
    ASSERT_EQ(sink.bytes.size(), image.size());
    EXPECT_TRUE(sink.bytes == image) << "the streamed file differs from the in-memory image";
    if (image.size() > (size_t{4} << 20) && h5::StreamFile::streamsDirectly()) {
      EXPECT_LE(sink.largest_write, (size_t{1} << 20) + 4096)
          << "a write of the whole image is back";
      EXPECT_GT(sink.writes, 8u);
    }
  }
  // ... and the manager's file is that image, readable with the checksums.
  test::ScratchDir dir;
  TrainingState s = largeState(9);
  s.created_unix = 1700000000;
  const auto path = saveOne(dir.path, s);
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(file == checkpoint::encodeState(s, path.string(), s.created_unix));
  const auto diff = checkpoint::diffStates(s, CheckpointManager::load(path));
  EXPECT_TRUE(diff.empty()) << diff.front();
}

TEST(CheckpointState, AFailingSinkEndsTheEncodingWithItsOwnError) {
  const TrainingState s = largeState(3);
  for (int64_t limit : {0, 3000, 5000000}) {
    VectorSink sink;
    sink.fail_after = limit;
    try {
      checkpoint::encodeStateTo(s, "full.h5", 1, sink);
      ADD_FAILURE() << "no error with a sink full at " << limit;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("test sink: full at byte " + std::to_string(limit)),
                std::string::npos)
          << e.what();
    }
  }
  // The library is left in order: the same name encodes again.
  VectorSink sink;
  checkpoint::encodeStateTo(s, "full.h5", 1, sink);
  EXPECT_TRUE(sink.bytes == checkpoint::encodeState(s, "full.h5", 1));
}

TEST(CheckpointState, InvalidStatesAreRejected) {
  TrainingState s = test::makeState(1);
  s.rng.words["conv1.weight"] = {1};
  s.rng.tensors["conv1.weight"] = Tensor({1});
  EXPECT_THROW(checkpoint::encodeState(s, "x", 1), CheckpointError);
  TrainingState u = test::makeState(1);
  u.params.tensors["undefined"] = Tensor();
  EXPECT_THROW(checkpoint::encodeState(u, "x", 1), CheckpointError);
  TrainingState e = test::makeState(1);
  e.params.tensors[""] = Tensor({1});
  EXPECT_THROW(checkpoint::encodeState(e, "x", 1), CheckpointError);
}

TEST(CheckpointState, H5pyAndH5dumpReadIt) {
  test::ScratchDir dir;
  const TrainingState s = test::makeState(3);
  const auto path = saveOne(dir.path, s);
  int rc = 0;
  const std::string dump = runCommand("h5dump -A " + path.string(), &rc);
  if (rc == 127 << 8) {
    std::cout << "h5dump not installed (hdf5-tools); skipping the h5dump check\n";
  } else {
    ASSERT_EQ(rc, 0) << dump;
    EXPECT_NE(dump.find("DATASET \"%2Flayer1%2FConv_output_0\""), std::string::npos) << dump;
    EXPECT_NE(dump.find("\"/layer1/Conv_output_0\""), std::string::npos) << dump;
    EXPECT_NE(dump.find("\"slimtrain-ckpt\""), std::string::npos) << dump;
    const std::string data = runCommand("h5dump -d /params/conv1.weight " + path.string(), &rc);
    EXPECT_EQ(rc, 0) << data;
    EXPECT_NE(data.find("H5T_IEEE_F32LE"), std::string::npos) << data;
  }
  const std::string script =
      "import h5py,sys\n"
      "f=h5py.File(sys.argv[1],'r')\n"
      "d=f['params']['%2Flayer1%2FConv_output_0']\n"
      "print(f.attrs['magic'].decode(), f.attrs['step'], d.shape, d.dtype, d.attrs['name'].decode(),\n"
      "      float(d[0,0,0,0]), f['masks']['conv1.weight'].dtype, int(f['rng']['sampler'][3]))\n";
  const std::string py = runCommand("/usr/bin/python3 -c \"import h5py\"", &rc);
  if (rc != 0) GTEST_SKIP() << "python3-h5py not available: " << py;
  std::ofstream(dir.path / "read.py") << script;
  const std::string out = runCommand("/usr/bin/python3 " + (dir.path / "read.py").string() + " " + path.string(), &rc);
  ASSERT_EQ(rc, 0) << out;
  const float w0 = s.params.tensors.at("/layer1/Conv_output_0").f32()[0];
  std::ostringstream want;
  want << "slimtrain-ckpt 3 (4, 3, 3, 3) float32 /layer1/Conv_output_0 ";
  EXPECT_EQ(out.rfind(want.str(), 0), 0u) << out;
  EXPECT_NEAR(std::stod(out.substr(want.str().size())), w0, 1e-6) << out;
  EXPECT_NE(out.find("uint8 18446744073709551615"), std::string::npos) << out;
}

/// Modifies a saved file through the raw C API (test-only tampering).
template <class Fn>
void tamper(const std::filesystem::path& p, Fn&& fn) {
  const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  fn(f);
  ASSERT_GE(H5Fclose(f), 0);
}

TEST(CheckpointValidation, WrongMagicAndVersionAreNamed) {
  test::ScratchDir dir;
  const auto p = saveOne(dir.path, test::makeState(5));
  tamper(p, [](hid_t f) {
    H5Adelete(f, "format_version");
    const int64_t v = 2;
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
  });
  std::string msg = loadError(p);
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("format_version: expected 1, found 2"), std::string::npos) << msg;

  tamper(p, [](hid_t f) { H5Adelete(f, "magic"); });
  msg = loadError(p);
  EXPECT_NE(msg.find("magic: expected \"slimtrain-ckpt\", found none"), std::string::npos) << msg;

  const auto q = saveOne(dir.path, test::makeState(6));
  tamper(q, [](hid_t f) {
    H5Adelete(f, "magic");
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 5);
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "magic", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, "other");
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
  });
  msg = loadError(q);
  EXPECT_NE(msg.find("found \"other\""), std::string::npos) << msg;
}

TEST(CheckpointValidation, MissingGroupAttributeAndDatasetAreNamed) {
  test::ScratchDir dir;
  const TrainingState s = test::makeState(5);
  const auto p = saveOne(dir.path, s);
  tamper(p, [](hid_t f) { H5Adelete(f, "sample_offset"); });
  std::string msg = loadError(p);
  EXPECT_NE(msg.find("sample_offset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;

  const auto q = saveOne(dir.path, test::makeState(6));
  tamper(q, [](hid_t f) { H5Ldelete(f, "masks", H5P_DEFAULT); });
  msg = loadError(q);
  EXPECT_NE(msg.find("required group /masks is missing"), std::string::npos) << msg;

  const auto r = saveOne(dir.path, test::makeState(7));
  tamper(r, [](hid_t f) { H5Ldelete(f, "/optimizer/conv1.weight%2Fmomentum", H5P_DEFAULT); });
  msg = loadError(r);
  EXPECT_NE(msg.find(r.string() + ", group /optimizer: expected 1 datasets"), std::string::npos) << msg;
  EXPECT_NE(msg.find("found 0"), std::string::npos) << msg;

  // A dataset the current model expects but the checkpoint lacks: checkLayout.
  TrainingState loaded = CheckpointManager::load(saveOne(dir.path, test::makeState(8)));
  loaded.optimizer.tensors.erase("conv1.weight/momentum");
  try {
    checkpoint::checkLayout(s, loaded, r.string());
    FAIL() << "checkLayout accepted a missing dataset";
  } catch (const CheckpointError& e) {
    msg = e.what();
    EXPECT_NE(msg.find(r.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("/optimizer/conv1.weight/momentum: expected float32 [8, 4, 1, 1], found none"),
              std::string::npos) << msg;
  }
  TrainingState reshaped = test::makeState(7);
  reshaped.params.tensors["conv1.weight"] = Tensor({8, 4});
  EXPECT_THROW(checkpoint::checkLayout(reshaped, CheckpointManager::load(saveOne(dir.path, s)), "f"),
               CheckpointError);
  EXPECT_NO_THROW(checkpoint::checkLayout(s, CheckpointManager::load(saveOne(dir.path, s)), "f"));
}

TEST(CheckpointValidation, TruncatedFileIsRejected) {
  test::ScratchDir dir;
  const auto p = saveOne(dir.path, test::makeState(5));
  const auto size = std::filesystem::file_size(p);
  for (auto keep : {size - 1, size / 2, uint64_t{100}, uint64_t{0}}) {
    std::filesystem::resize_file(p, keep);
    const std::string msg = loadError(p);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  }
}

TEST(CheckpointValidation, FlippedDataByteIsCaughtByFletcher32) {
  test::ScratchDir dir;
  const auto p = saveOne(dir.path, test::makeState(5));
  int64_t offset = -1;
  {
    h5::Handle f = h5::openFileReadOnly(p.string());
    h5::Handle d = h5::openDataset(f, "/params/conv1.weight");
    EXPECT_TRUE(h5::datasetInfo(d).fletcher32);
    offset = h5::datasetOffset(d);
  }
  ASSERT_GT(offset, 0);
  {
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(offset + 10);
    char c = 0;
    io.read(&c, 1);
    c ^= 0x10;
    io.seekp(offset + 10);
    io.write(&c, 1);
  }
  h5::openFileReadOnly(p.string());  // still openable: only data is damaged
  const std::string msg = loadError(p);
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset /params/conv1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Fletcher32"), std::string::npos) << msg;
}

TEST(CheckpointDescribe, SummarisesGroupsTensorsAndConfig) {
  TrainingState s = test::makeState(42);
  Tensor m({4}, DType::kU8);
  m.data<uint8_t>()[0] = 1;  // three of four pruned
  s.masks.tensors["fc.weight"] = m;
  const std::string text = checkpoint::describeCheckpoint(s);
  EXPECT_NE(text.find("step 42, epoch 4"), std::string::npos) << text;
  EXPECT_NE(text.find("world_size 4"), std::string::npos) << text;
  EXPECT_NE(text.find("/masks: 2 tensors"), std::string::npos) << text;
  EXPECT_NE(text.find("fc.weight  uint8 [4]  min 0 max 1 mean 0.25 zeros 75%"), std::string::npos) << text;
  EXPECT_NE(text.find("@lr.kind = \"cosine\""), std::string::npos) << text;
  EXPECT_NE(text.find("  | TrainConfig:"), std::string::npos) << text;
}

}  // namespace
}  // namespace slim
