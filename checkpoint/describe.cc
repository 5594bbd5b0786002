// Human-readable summary of a checkpoint for `slimtrain checkpoint show FILE`.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <sstream>

#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/training_state.h"

namespace slim::checkpoint {

namespace {

/// "min -0.12 max 0.34 mean 0.01" (float/int) plus the share of zeros, which
/// for masks is the sparsity.
std::string stats(const Tensor& t) {
  const int64_t n = t.numel();
  if (n == 0) return "empty";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t zeros = 0, nonfinite = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = 0;
    switch (t.dtype()) {
      case DType::kF32: v = t.data<float>()[i]; break;
      case DType::kI64: v = static_cast<double>(t.data<int64_t>()[i]); break;
      case DType::kU8: v = t.data<uint8_t>()[i]; break;
      case DType::kI8: v = t.data<int8_t>()[i]; break;
      case DType::kI32: v = t.data<int32_t>()[i]; break;
    }
    if (!std::isfinite(v)) {
      ++nonfinite;
      continue;
    }
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    zeros += v == 0;
  }
  std::ostringstream os;
  os.precision(5);
  if (nonfinite < n) os << "min " << lo << " max " << hi << " mean " << sum / double(n - nonfinite);
  os.precision(3);
  os << " zeros " << 100.0 * double(zeros) / double(n) << "%";
  if (nonfinite) os << " NON-FINITE " << nonfinite;
  return os.str();
}

}  // namespace

std::string describeCheckpoint(const TrainingState& s) {
  std::ostringstream os;
  os << "step " << s.step << ", epoch " << s.epoch << ", sample_offset " << s.sample_offset << ", world_size "
     << s.world_size << ", seed " << s.seed << "\n";
  if (s.created_unix > 0) {
    const std::time_t t = static_cast<std::time_t>(s.created_unix);
    char buf[64];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    os << "created " << buf << "\n";
  }
  for (const auto& [gname, g] : s.groups()) {
    int64_t elems = 0;
    for (const auto& kv : g->tensors) elems += kv.second.numel();
    os << "/" << gname << ": " << g->tensors.size() << " tensors (" << elems << " elements), " << g->attrs.size()
       << " attributes, " << g->words.size() << " words arrays\n";
    for (const auto& [name, t] : g->tensors)
      os << "  " << name << "  " << dtypeName(t.dtype()) << " " << shapeStr(t.shape()) << "  " << stats(t) << "\n";
    for (const auto& [name, w] : g->words) {
      os << "  " << name << "  uint64[" << w.size() << "]";
      for (size_t i = 0; i < std::min<size_t>(w.size(), 4); ++i) os << (i ? ", " : "  ") << w[i];
      if (w.size() > 4) os << ", ...";
      os << "\n";
    }
    for (const auto& [name, v] : g->attrs) {
      os << "  @" << name << " = ";
      std::visit([&](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) os << '"' << x << '"';
        else os << x;
      }, v);
      os << "\n";
    }
  }
  os << "config_yaml (" << s.config_yaml.size() << " bytes):\n";
  std::istringstream cfg(s.config_yaml);
  for (std::string line; std::getline(cfg, line);) os << "  | " << line << "\n";
  return os.str();
}

std::string describeCheckpointFile(const std::filesystem::path& file) {
  return "checkpoint " + file.string() + "\n" + describeCheckpoint(CheckpointManager::load(file));
}

}  // namespace slim::checkpoint
