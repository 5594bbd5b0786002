// <save_dir>/report.html: a self-contained page (inline SVG, no external
// resources) a person opens after a compression run, plus each plot as
// <save_dir>/plots/<name>.svg. Plots: loss terms and learning rate over
// iterations, GMP ratio planned vs sparsity achieved, per-layer sparsity,
// per-layer activation scales (and PACT alphas), eval top-1 of teacher and
// student over time. Data: metrics.jsonl of the run and the final state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "trainer/graph/graph.h"

namespace slim::train {

/// A chart label for `tensor` that names its layer: for a weight (an
/// initializer), the node that uses it; for an activation named only by the
/// exporter (onnx::...), the node that computes it; else the tensor's name.
/// A node without a name is named by its first output.
/// @param g the model as loaded (before masks and fake-quant nodes)
std::string layerName(const graph::Graph& g, const std::string& tensor);

struct ReportInputs {
  std::string save_dir;     ///< holds metrics.jsonl; receives the outputs
  std::string title;        ///< e.g. the model name
  std::string report_json;  ///< report.json's text, shown verbatim
  std::vector<std::pair<std::string, double>> layer_sparsity;  ///< layer -> zeros share
  std::vector<std::pair<std::string, double>> act_scales;      ///< tensor -> scale
  std::vector<std::pair<std::string, double>> pact_alphas;     ///< tensor -> alpha
};

/// Writes report.html and plots/*.svg; returns the path of report.html.
/// Plots without data (e.g. no pruning) are left out with a note.
std::string writeReportHtml(const ReportInputs& in);

}  // namespace slim::train
