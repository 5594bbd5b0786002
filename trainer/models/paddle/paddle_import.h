// Paddle inference model -> slimtrain Graph. Reads block 0 of the ProgramDesc
// and the parameters (combined file or one file per variable) and maps Paddle
// ops to ONNX-named ops. Tensor names are kept exactly as Paddle writes them
// (distillation configs name them); nodes are named "<paddle op type>_<index>".
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::models {

struct PaddleImportOptions {
  /// Program-only mode: no params file is read. Every persistable tensor is
  /// created from its VarDesc (dims must be fully known) and zero-filled,
  /// except batch_norm Scale and Variance, which are filled with 1 so the graph
  /// is numerically sane. Meant for `inspect`, tests and shape checks.
  bool program_only = false;
};

/// Imports a Paddle inference model.
/// @param model_path   the ProgramDesc file (model.pdmodel, __model__, ...)
/// @param params_path  the combined params file (model.pdiparams, __params__);
///                     "" = separate params: one file per persistable variable,
///                     named after it, in the model file's folder
/// @param opts         see PaddleImportOptions (program_only ignores params_path)
/// @return the graph: inputs from `feed` ops (in `col` order, VarDesc shapes with
///         -1 batch), outputs from `fetch` ops, parameters as initializers
///         (float ones trainable, batch_norm mean/variance as buffers).
/// @throws ModelError naming the file and byte offset (corrupt or truncated
///         files, leftover or missing bytes), the parameter (shape mismatch:
///         expected vs found), or the op type, op index and output name
///         (unsupported op or attribute).
graph::Graph importPaddle(const std::string& model_path, const std::string& params_path,
                          const PaddleImportOptions& opts = {});

/// importPaddle(dir/model_filename, params_filename.empty() ? "" : dir/params_filename).
graph::Graph importPaddleDir(const std::string& dir, const std::string& model_filename,
                             const std::string& params_filename,
                             const PaddleImportOptions& opts = {});

/// Imports from bytes in memory (a combined params buffer, or none when
/// opts.program_only). `label` names the model in messages.
graph::Graph importPaddleBytes(const std::string& model_bytes, const std::string& params_bytes,
                               const std::string& label, const PaddleImportOptions& opts = {});

}  // namespace slim::models
