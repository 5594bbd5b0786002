// Runs ONNX's own operator test suite (Debian's libonnx-testdata) through the
// importer and the kernels: every case whose ops are all registered must
// reproduce the expected outputs; everything else is reported, not skipped.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <set>

#include "onnx_test_util.h"
#include "trainer/models/onnx/onnx_import.h"
#include "trainer/ops/op.h"

namespace slim::test {
namespace {

const char* kRoot = "/usr/share/libonnx-testdata/data";
const char* kSuites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

// Op types of a model that the registry lacks (empty: all registered).
std::set<std::string> missingOps(const fs::path& model) {
  std::ifstream f(model, std::ios::binary);
  onnx::ModelProto m;
  std::set<std::string> missing;
  if (!m.ParseFromIstream(&f)) return missing;  // the importer reports it
  for (const auto& n : m.graph().node())
    if (!ops::OpRegistry::get().has(n.op_type()) ||
        !(n.domain().empty() || n.domain() == "ai.onnx"))
      missing.insert(n.domain().empty() ? n.op_type() : n.domain() + "." + n.op_type());
  return missing;
}

bool saysUnsupported(const std::string& msg) {
  return msg.find("not supported") != std::string::npos ||
         msg.find("unsupported") != std::string::npos ||
         msg.find("-D only") != std::string::npos;  // kernels refusing 1-D/3-D windows
}

// Strips the "ONNX model '...' (N bytes): " prefix for the summary.
std::string reason(const std::string& msg) {
  auto p = msg.find("bytes): ");
  return p == std::string::npos ? msg : msg.substr(p + 8);
}

struct Summary {
  int total = 0, ran = 0, passed = 0, missing_cases = 0;
  std::map<std::string, int> missing_ops;             // op type -> cases
  std::vector<std::string> unsupported, failures;     // "case: reason"
};

void runCase(const fs::path& dir, const std::string& id, Summary& s) {
  ++s.total;
  fs::path model = dir / "model.onnx";
  if (!fs::exists(model)) {
    s.failures.push_back(id + ": no model.onnx");
    return;
  }
  std::set<std::string> missing = missingOps(model);
  if (!missing.empty()) {
    ++s.missing_cases;
    for (const auto& op : missing) ++s.missing_ops[op];
    return;
  }
  try {
    graph::Graph g = models::importOnnx(model.string());
    fs::path data = dir / "test_data_set_0";
    auto feeds = loadFeeds(data, g);
    auto want = loadExpected(data);
    ++s.ran;
    auto got = runGraph(g, feeds);
    if (got.size() != want.size()) {
      s.failures.push_back(id + ": " + std::to_string(got.size()) + " outputs, expected " +
                           std::to_string(want.size()));
      return;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      std::string d = compareTensors(got[i], want[i], 1e-4, 1e-3);
      if (!d.empty()) {
        s.failures.push_back(id + ": output " + std::to_string(i) + " '" +
                             g.outputs[i].name + "': " + d);
        return;
      }
    }
    ++s.passed;
  } catch (const Error& e) {
    if (saysUnsupported(e.what())) {
      s.unsupported.push_back(id + ": " + reason(e.what()));
    } else {
      s.failures.push_back(id + ": " + reason(e.what()));
    }
  } catch (const std::exception& e) {
    s.failures.push_back(id + ": non-slimtrain exception: " + e.what());
  }
}

TEST(OnnxTestdata, AllSupportedCasesReproduceExpectedOutputs) {
  if (!fs::is_directory(kRoot))
    GTEST_SKIP() << kRoot << " is missing (install Debian's libonnx-testdata)";
  auto t0 = std::chrono::steady_clock::now();
  Summary s;
  for (const char* suite : kSuites) {
    fs::path sd = fs::path(kRoot) / suite;
    if (!fs::is_directory(sd)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(sd))
      if (e.is_directory()) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const auto& c : cases) runCase(c, std::string(suite) + "/" + c.filename().string(), s);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int missing_cases = s.missing_cases;
  std::cout << "\n== ONNX test suite (" << kRoot << ", " << secs << " s) ==\n"
            << "cases total " << s.total << ", ran " << s.ran << ", passed " << s.passed
            << ", failed " << s.failures.size() << ", not supported "
            << missing_cases + s.unsupported.size() << " (" << missing_cases
            << " need unregistered ops, " << s.unsupported.size()
            << " refused an attribute/feature)\n";
  std::cout << "-- not supported: unregistered op types (cases needing each) --\n";
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& kv : s.missing_ops) by_count.emplace_back(-kv.second, kv.first);
  std::sort(by_count.begin(), by_count.end());
  std::string line;
  for (const auto& [n, op] : by_count) {
    line += op + " " + std::to_string(-n) + ", ";
    if (line.size() > 100) {
      std::cout << "  " << line << "\n";
      line.clear();
    }
  }
  if (!line.empty()) std::cout << "  " << line << "\n";
  std::cout << "-- not supported: refused attribute/feature --\n";
  for (const auto& u : s.unsupported) std::cout << "  " << u << "\n";
  std::cout << "-- failed --\n";
  for (const auto& f : s.failures) std::cout << "  " << f << "\n";

  EXPECT_GT(s.passed, 0) << "no case ran to completion";
  EXPECT_TRUE(s.failures.empty()) << s.failures.size() << " cases failed (listed above)";
}

}  // namespace
}  // namespace slim::test
