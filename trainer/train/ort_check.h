// The independent-runtime check: ONNX Runtime (through node and
// scripts/ort_stream.js) runs the exported model on exactly the batches
// slimtrain evaluated — any data format, any transform — and returns its
// predictions, which the caller compares sample by sample.
//
// The child is started with an argument vector (no shell); its stderr goes
// to a log file whose tail is quoted when it fails. SIGPIPE is ignored
// process-wide so a child that died turns writes into EPIPE errors.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"

namespace slim::train {

class OrtRunner {
 public:
  OrtRunner() = default;
  /// Ends the child (never throws).
  ~OrtRunner();
  OrtRunner(const OrtRunner&) = delete;
  OrtRunner& operator=(const OrtRunner&) = delete;

  /// Starts `node SCRIPT MODEL` and waits for its "ready" line.
  /// @param model    the ONNX file
  /// @param log_path where the child's stderr goes
  /// @param why      the reason on failure (node or onnxruntime-node missing,
  ///                 the model rejected: the log's tail)
  /// @return false when ONNX Runtime is not available or failed to start
  bool start(const std::string& model, const std::string& log_path, std::string* why);

  /// Runs one batch; `pred` receives the argmax of each row of the model's
  /// first output, or of each pixel ((n, h, w) order) of an (N, classes, H,
  /// W) output. False (with `why`) when the child failed.
  bool predict(const Tensor& images, std::vector<int64_t>* pred, std::string* why);

  /// Ends the stream and waits for the child; false if it failed.
  bool finish(std::string* why);

  /// The helper script: $SLIM_ORT_SCRIPT, else the installed or source copy.
  static std::string scriptPath();

 private:
  std::string failure(const std::string& what) const;

  pid_t pid_ = -1;
  int to_child_ = -1;
  FILE* from_child_ = nullptr;
  std::string log_path_;
};

}  // namespace slim::train
