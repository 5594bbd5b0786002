// Launch detection from mpirun/srun/PMIx variables and backend selection.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "comm/registry.h"

namespace slim::test {
namespace {

using comm::detectLaunch;

const char* const kVars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
    "PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK"};

/// Clears the launcher variables for the test and restores them afterwards.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      const char* old = std::getenv(v);
      saved_[v] = old ? std::optional<std::string>(old) : std::nullopt;
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (auto& [k, v] : saved_) {
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST_F(RegistryTest, PlainLaunch) {
  auto l = detectLaunch();
  EXPECT_EQ(l.launcher, "plain");
  EXPECT_EQ(l.rank, 0);
  EXPECT_EQ(l.size, 1);
  EXPECT_FALSE(l.underLauncher());
}

TEST_F(RegistryTest, Mpirun) {
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  setenv("SLURM_PROCID", "0", 1);  // mpirun inside sbatch: OMPI wins
  setenv("SLURM_NTASKS", "1", 1);
  auto l = detectLaunch();
  EXPECT_EQ(l.launcher, "mpirun");
  EXPECT_EQ(l.rank, 3);
  EXPECT_EQ(l.size, 4);
  EXPECT_EQ(l.local_rank, 1);
}

TEST_F(RegistryTest, Srun) {
  setenv("SLURM_PROCID", "5", 1);
  setenv("SLURM_NTASKS", "8", 1);
  setenv("SLURM_LOCALID", "1", 1);
  auto l = detectLaunch();
  EXPECT_EQ(l.launcher, "srun");
  EXPECT_EQ(l.rank, 5);
  EXPECT_EQ(l.size, 8);
  EXPECT_EQ(l.local_rank, 1);
}

TEST_F(RegistryTest, Pmix) {
  setenv("PMIX_RANK", "1", 1);
  setenv("PMIX_SIZE", "2", 1);
  auto l = detectLaunch();
  EXPECT_EQ(l.launcher, "pmix");
  EXPECT_EQ(l.rank, 1);
  EXPECT_EQ(l.size, 2);
}

TEST_F(RegistryTest, BadValuesAreConfigErrors) {
  setenv("OMPI_COMM_WORLD_RANK", "two", 1);
  EXPECT_THROW(detectLaunch(), ConfigError);
  setenv("OMPI_COMM_WORLD_RANK", "4", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  try {
    detectLaunch();
    FAIL() << "rank 4 of 4 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 4 outside world size 4"),
              std::string::npos) << e.what();
  }
}

TEST_F(RegistryTest, AutoAndLocalGiveWorldOfOneWhenPlain) {
  for (const char* b : {"auto", "local"}) {
    auto c = comm::createCommunicator(b, std::chrono::seconds(3));
    EXPECT_EQ(c->backend(), "local") << b;
    EXPECT_EQ(c->size(), 1);
    EXPECT_EQ(c->defaultTimeout(), std::chrono::seconds(3));
  }
}

TEST_F(RegistryTest, UnknownBackendAndBadTimeout) {
  try {
    comm::createCommunicator("gloo", std::chrono::seconds(1));
    FAIL() << "unknown backend accepted";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'gloo'"), std::string::npos) << m;
    EXPECT_NE(m.find("local"), std::string::npos) << m;
  }
  EXPECT_THROW(comm::createCommunicator("local", std::chrono::milliseconds(0)),
               ConfigError);
}

TEST_F(RegistryTest, LocalRefusesMultiRankLaunch) {
  setenv("SLURM_PROCID", "0", 1);
  setenv("SLURM_NTASKS", "4", 1);
  EXPECT_THROW(comm::createCommunicator("local", std::chrono::seconds(1)),
               ConfigError);
}

TEST_F(RegistryTest, NcclWithoutBuildOrDeviceIsAClearError) {
  bool compiled = false;
  for (const auto& b : comm::listBackends())
    if (b.name == "nccl") compiled = b.available;
  try {
    auto c = comm::createCommunicator("nccl", std::chrono::seconds(5));
    ASSERT_TRUE(compiled) << "nccl created although not compiled in";
    GTEST_SKIP() << "a CUDA device is present; comm_nccl_test covers nccl";
  } catch (const ConfigError& e) {
    // Not compiled in, or compiled but this host has no CUDA device.
    std::string want = compiled ? "CUDA device" : "not available";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

TEST_F(RegistryTest, BackendListIsOrdered) {
  auto list = comm::listBackends();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list.back().name, "local");
  EXPECT_TRUE(list.back().available);
}

}  // namespace
}  // namespace slim::test
