// Every file in tests/unit/config/bad/ must be rejected with a ConfigError
// whose message contains each "# expect: ..." line of the file; "# set: K=V"
// lines are passed as --set overrides.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/config/config.h"
#include "trainer/core/error.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(SLIM_TEST_SOURCE_DIR) / "tests/unit/config/bad";

std::vector<std::string> corpus() {
  std::vector<std::string> names;
  if (!fs::is_directory(kDir)) return names;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> headerValues(const fs::path& file, const std::string& tag) {
  std::ifstream in(file);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line) && line.rfind("#", 0) == 0)
    if (line.rfind(tag, 0) == 0) out.push_back(line.substr(tag.size()));
  return out;
}

class BadConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(BadConfig, RejectedWithContext) {
  const fs::path file = kDir / (GetParam() + ".yaml");
  const auto expects = headerValues(file, "# expect: ");
  ASSERT_FALSE(expects.empty()) << file << " has no '# expect: ' line";
  const auto sets = headerValues(file, "# set: ");
  try {
    slim::config::loadConfig(file.string(), sets);
    FAIL() << file << " was accepted";
  } catch (const slim::ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file.string()), std::string::npos) << "message lacks the file name: " << msg;
    for (const auto& x : expects)
      EXPECT_NE(msg.find(x), std::string::npos) << "expected '" << x << "' in: " << msg;
    EXPECT_EQ(slim::exitCodeFor(e), slim::kExitUsage);
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadConfig, ::testing::ValuesIn(corpus()),
                         [](const auto& info) { return info.param; });

TEST(BadConfigCorpus, HasAtLeast60Files) { EXPECT_GE(corpus().size(), 60u) << kDir; }

}  // namespace
