// OrtRunner: a node child fed batches over a pipe (see ort_check.h).
#include "trainer/train/ort_check.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "slim_config.h"

extern char** environ;

namespace slim::train {
namespace {

// Writes all of `n` bytes; false on any error (EPIPE when the child died).
bool writeAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool readLine(FILE* f, std::string* line) {
  line->clear();
  for (int c; (c = std::fgetc(f)) != EOF;) {
    if (c == '\n') return true;
    line->push_back(static_cast<char>(c));
  }
  return false;
}

}  // namespace

// $SLIM_ORT_SCRIPT; else the installed copy next to the binary
// (<bindir>/<SLIM_BIN_TO_DATADIR>/ort_stream.js, i.e. PREFIX/share/slimtrain);
// else the source tree's (build-tree use). The caller checks existence.
std::string OrtRunner::scriptPath() {
  if (const char* e = std::getenv("SLIM_ORT_SCRIPT"); e != nullptr && *e) return e;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && !exe.empty()) {
    const std::filesystem::path installed =
        exe.parent_path() / SLIM_BIN_TO_DATADIR / "ort_stream.js";
    if (std::filesystem::exists(installed, ec)) return installed.lexically_normal().string();
  }
  return std::string(SLIM_SOURCE_DIR) + "/scripts/ort_stream.js";
}

OrtRunner::~OrtRunner() {
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ != nullptr) std::fclose(from_child_);
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string OrtRunner::failure(const std::string& what) const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  if (log.size() > 600) log = "..." + log.substr(log.size() - 600);
  while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
  return what + (log.empty() ? "" : " (" + log_path_ + ": " + log + ")");
}

bool OrtRunner::start(const std::string& model, const std::string& log_path, std::string* why) {
  log_path_ = log_path;
  const std::string script = scriptPath();
  if (!std::filesystem::exists(script)) {
    *why = "ONNX Runtime helper " + script + " not found (set SLIM_ORT_SCRIPT)";
    return false;
  }
  ::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    *why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    *why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {"node", script, model};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    pid_ = -1;
    ::close(in[1]);
    ::close(out[0]);
    *why = std::string("cannot run node: ") + std::strerror(rc) +
           " (install Node.js and `npm install --ignore-scripts onnxruntime-node`)";
    return false;
  }
  to_child_ = in[1];
  from_child_ = ::fdopen(out[0], "r");
  std::string line;
  if (!readLine(from_child_, &line) || line.rfind("ready ", 0) != 0) {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    *why = failure("ONNX Runtime did not start (node, onnxruntime-node, or the model)");
    return false;
  }
  return true;
}

bool OrtRunner::predict(const Tensor& images, std::vector<int64_t>* pred, std::string* why) {
  // ndim < 0 marks int64 data (token ids), ndim > 0 float32 (ort_stream.js).
  const int32_t nd = static_cast<int32_t>(images.ndim());
  std::vector<int32_t> head = {images.dtype() == DType::kI64 ? -nd : nd};
  for (int64_t d : images.shape()) head.push_back(static_cast<int32_t>(d));
  if (!writeAll(to_child_, head.data(), head.size() * sizeof(int32_t)) ||
      !writeAll(to_child_, images.raw(), images.bytes())) {
    *why = failure("ONNX Runtime stopped reading");
    return false;
  }
  std::string line;
  if (!readLine(from_child_, &line)) {
    *why = failure("ONNX Runtime ended without an answer");
    return false;
  }
  pred->clear();
  const char* p = line.c_str();
  while (*p != '\0') {
    char* end = nullptr;
    pred->push_back(std::strtoll(p, &end, 10));
    if (end == p) break;
    p = *end == ',' ? end + 1 : end;
  }
  const int64_t n = static_cast<int64_t>(pred->size());
  if (n == 0 || n % images.dim(0) != 0) {
    *why = "ONNX Runtime answered " + std::to_string(pred->size()) + " predictions for " +
           std::to_string(images.dim(0)) + " samples";
    return false;
  }
  return true;
}

bool OrtRunner::finish(std::string* why) {
  const int32_t end = 0;
  writeAll(to_child_, &end, sizeof end);
  ::close(to_child_);
  to_child_ = -1;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = failure("ONNX Runtime exited with an error");
    return false;
  }
  return true;
}

}  // namespace slim::train
