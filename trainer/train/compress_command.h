// `slimtrain compress CONFIG`: ACT's pipeline on a Graph — load the model,
// merge the frozen teacher, insert pruning masks and fake quantization, build
// the distillation objective, train with the shared loop, then write the
// compressed model, report.json and metrics.jsonl to Global.save_dir.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "trainer/compress/distill/distill_loss.h"
#include "trainer/compress/distill/teacher_merge.h"
#include "trainer/compress/prune/pruner.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/config/config.h"
#include "trainer/graph/graph.h"

namespace slim::train {

/// The training graph of a compression job (filled in place: the pruner
/// refers to `g`).
struct CompressGraph {
  graph::Graph original;  ///< the model as loaded (shares weights with g)
  graph::Graph teacher;   ///< frozen copy before the merge
  graph::Graph g;         ///< student + masks + fake quant + merged teacher + loss
  std::string image, logits;
  int64_t total = 0;      ///< training iterations
  std::unique_ptr<compress::Pruner> pruner;
  compress::TeacherInfo tinfo;
  compress::DistillLoss dl;
  std::unique_ptr<compress::QatInfo> qat;
  int renormalized = 0;   ///< batch norms added after folded convolutions
};

/// Builds the graph of `cfg`'s compression job for `world` ranks and a
/// training set of `train_size` samples (which set the GMP schedule), in
/// ACT's pass order. Every rank, and `export`, builds the same names.
void buildCompressGraph(const config::Config& cfg, int64_t world, int64_t train_size,
                        CompressGraph& cg);

/// The model to deploy: masks applied, then INT8 QDQ (quantized jobs unless
/// `fp32`) or the float student with its pruned zeros. `int8_weights`: int8
/// weights on every quantized op (QdqOptions::uint8_weights = false).
graph::Graph deployableGraph(CompressGraph& cg, bool fp32, bool int8_weights = false);

/// `slimtrain export CHECKPOINT_OR_SAVE_DIR --out FILE [--fp32 | --int8-weights]`: rebuilds the
/// graph of the run that wrote the checkpoint (its stored config; model and
/// data paths resolve as in that run), loads the state and writes the
/// deployable ONNX model. Train checkpoints give the FP32 model.
struct ExportSummary {
  std::string checkpoint;  ///< the checkpoint file read
  int64_t iteration = 0;   ///< its training iteration
  std::string format;      ///< "int8 qdq onnx" or "fp32 onnx"
  int64_t bytes = 0;       ///< size of the written file
};
/// @param summary when set, receives what was written (export --json)
int runExport(const std::string& from, const std::string& out_path, bool fp32,
              bool int8_weights = false, ExportSummary* summary = nullptr);

/// Runs the compression job on this rank; returns the process exit code
/// (kExitCheckpointed when stopped by a signal after checkpointing).
int runCompress(const config::Config& cfg, comm::Communicator& comm, bool force_resume);

}  // namespace slim::train
