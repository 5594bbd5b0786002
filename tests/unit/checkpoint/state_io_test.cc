// Round trip, determinism, external readability (h5py, h5dump) and
// validation of damaged checkpoint files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdio>
#include <fstream>

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
