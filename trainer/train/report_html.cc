// The compression report page: the summary table, then SVG charts
// (report_svg.h) from metrics.jsonl and the final state, in one HTML file.
#include "trainer/train/report_html.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "trainer/core/error.h"
#include "trainer/core/log.h"
#include "trainer/train/report_svg.h"

namespace slim::train {
namespace {

// metrics.jsonl: training lines (iter, loss, terms, lr, ...) and eval lines.
struct Metrics {
  std::map<std::string, Points> series;  // key -> (iter, value)
};

Metrics readMetrics(const std::string& path) {
  Metrics m;
  std::ifstream f(path);
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    YAML::Node n;
    try {
      n = YAML::Load(line);
    } catch (const YAML::Exception& e) {
      log::warn(path, ":", lineno, ": skipped in the report (", e.what(), ")");
      continue;
    }
    if (!n.IsMap() || !n["iter"]) continue;
    const double iter = n["iter"].as<double>();
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      if (key == "iter" || key == "epoch" || key == "time_ms" || key == "elapsed_s" ||
          !kv.second.IsScalar())
        continue;
      try {
        m.series[key].push_back({iter, kv.second.as<double>()});
      } catch (const YAML::Exception&) {
      }
    }
  }
  return m;
}

// report.json with one key per line, indented two spaces per level (the
// file itself stays one line for tools).
std::string prettyJson(const std::string& json) {
  std::string out;
  int depth = 0;
  bool in_string = false, escaped = false;
  auto newline = [&] { out += "\n" + std::string(static_cast<size_t>(2 * depth), ' '); };
  for (char c : json) {
    if (in_string) {
      out += c;
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; out += c; break;
      case '{': case '[': out += c; ++depth; newline(); break;
      case '}': case ']': --depth; newline(); out += c; break;
      case ',': out += c; newline(); break;
      case ' ': break;
      case ':': out += ": "; break;
      default: out += c;
    }
  }
  return out;
}

// The answer first: teacher, student, export and ONNX Runtime top-1 with
// their deltas, sparsity, size, speed, ranks. Each value cell carries its
// report.json key (data-key) and the value as written there (data-value), so
// a test can check the page against the file.
// The evaluation metric report.json names ("metric"; top1 when absent) and
// how the page labels it.
struct MetricNames {
  std::string key = "top1", label = "top-1";
  bool fraction = true;  // shown as a percentage
};

MetricNames metricNames(const YAML::Node& r) {
  MetricNames n;
  if (r.IsMap() && r["metric"] && r["metric"].IsScalar()) n.key = r["metric"].as<std::string>();
  if (n.key == "miou") n.label = "mIoU";
  if (n.key == "pixel_acc") n.label = "pixel accuracy";
  if (n.key == "distill_loss") {
    n.label = "distillation loss";
    n.fraction = false;
  }
  return n;
}

std::string summaryTable(const std::string& report_json) {
  YAML::Node r;
  try {
    r = YAML::Load(report_json);
  } catch (const YAML::Exception&) {
    return "";
  }
  if (!r.IsMap()) return "";
  std::ostringstream t;
  const MetricNames mn = metricNames(r);
  auto num = [&](const std::string& key, double* v) {
    if (!r[key] || !r[key].IsScalar()) return false;
    try {
      *v = r[key].as<double>();
    } catch (const YAML::Exception&) {
      return false;
    }
    return std::isfinite(*v);
  };
  auto row = [&](const std::string& label, const std::string& key, const std::string& shown,
                 const std::string& note) {
    t << "<tr><th>" << esc(label) << "</th><td data-key=\"" << key << "\" data-value=\""
      << esc(r[key] ? r[key].as<std::string>() : std::string()) << "\">" << esc(shown)
      << "</td><td>" << esc(note) << "</td></tr>\n";
  };
  auto pct = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", 100 * v);
    return std::string(b);
  };
  auto delta = [&](double v, double ref) {
    char b[48];
    if (mn.fraction) std::snprintf(b, sizeof b, "%+.2f points vs the teacher", 100 * (v - ref));
    else std::snprintf(b, sizeof b, "%+.4g vs the teacher", v - ref);
    return std::string(b);
  };
  auto shown = [&](double v) {
    if (mn.fraction) return pct(v);
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return std::string(b);
  };
  double teacher = NAN, v = 0;
  const bool has_teacher = num("teacher_" + mn.key, &teacher);
  t << "<table class=\"summary\">\n";
  if (has_teacher)
    row("Teacher " + mn.label + " (the model as given)", "teacher_" + mn.key, shown(teacher), "");
  for (const auto& [key, label] :
       std::vector<std::pair<std::string, std::string>>{
           {"student_" + mn.key, "Student " + mn.label + " (fake-quant, masked)"},
           {"export_" + mn.key, "Exported model in slimtrain"},
           {"onnxruntime_" + mn.key, "Exported model in ONNX Runtime"}})
    if (num(key, &v)) row(label, key, shown(v), has_teacher ? delta(v, teacher) : "");
  if (!r["onnxruntime_differing_predictions"] || r["onnxruntime_check"])
    row("ONNX Runtime check", "onnxruntime_check", "not run",
        r["onnxruntime_check"] ? r["onnxruntime_check"].as<std::string>() : "");
  else if (num("onnxruntime_differing_predictions", &v))
    row("Predictions where ONNX Runtime and slimtrain differ", "onnxruntime_differing_predictions",
        std::to_string(static_cast<int64_t>(v)), v > 0 ? "see report.json" : "every sample agrees");
  if (!r["onnxruntime_check"] && num("onnxruntime_differing_samples", &v))
    row("Samples with a pixel where they differ", "onnxruntime_differing_samples",
        std::to_string(static_cast<int64_t>(v)), "segmentation: predictions are per pixel");
  if (r["sparsity"] && r["sparsity"]["overall"]) {
    const double sp = r["sparsity"]["overall"].as<double>();
    t << "<tr><th>Sparsity of the pruned weights</th><td data-key=\"sparsity.overall\" "
      << "data-value=\"" << esc(r["sparsity"]["overall"].as<std::string>()) << "\">" << pct(sp)
      << "</td><td></td></tr>\n";
  }
  double before = 0, after = 0, ratio = 0;
  if (num("teacher_initializer_bytes", &before) && num("export_initializer_bytes", &after) &&
      num("size_ratio", &ratio)) {
    char b[96];
    std::snprintf(b, sizeof b, "%.2fx smaller (%.0f -> %.0f bytes of weights)", ratio, before,
                  after);
    row("Model size", "size_ratio", b, r["format"] ? r["format"].as<std::string>() : "");
  }
  if (num("images_per_s", &v)) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f img/s", v);
    double wait = 0;
    row("Training speed", "images_per_s", b,
        num("data_wait_share", &wait) ? "waiting for data " + pct(wait) + " of step time" : "");
  }
  if (num("iterations", &v))
    row("Iterations", "iterations", std::to_string(static_cast<int64_t>(v)), "");
  if (num("world_size", &v))
    row("Ranks", "world_size", std::to_string(static_cast<int64_t>(v)), "");
  if (num("bad_images_skipped", &v) && v > 0)
    row("Unreadable images skipped", "bad_images_skipped",
        std::to_string(static_cast<int64_t>(v)), "skip_bad_images");
  t << "</table>\n";
  return t.str();
}

}  // namespace

std::string layerName(const graph::Graph& g, const std::string& tensor) {
  auto label = [](const graph::Node& n) { return n.name.empty() ? n.outputs.at(0) : n.name; };
  if (g.isInitializer(tensor)) {
    for (const auto& n : g.nodes)
      if (std::find(n.inputs.begin(), n.inputs.end(), tensor) != n.inputs.end() &&
          !n.outputs.empty())
        return label(n);
    return tensor;
  }
  if (tensor.rfind("onnx::", 0) == 0)
    for (const auto& n : g.nodes)
      if (std::find(n.outputs.begin(), n.outputs.end(), tensor) != n.outputs.end())
        return label(n);
  return tensor;
}

std::string writeReportHtml(const ReportInputs& in) {
  namespace fs = std::filesystem;
  const Metrics m = readMetrics(in.save_dir + "/metrics.jsonl");
  auto get = [&](const std::string& k) {
    auto it = m.series.find(k);
    return it == m.series.end() ? Points{} : it->second;
  };
  struct Plot {
    std::string name, caption, svg;
  };
  std::vector<Plot> plots;
  std::vector<std::string> missing;
  auto percent = [](Points p) {
    for (auto& xy : p) xy.second *= 100;
    return p;
  };
  // Loss terms: "loss" plus every other per-iteration key that is not
  // bookkeeping or an evaluation.
  static const std::set<std::string> kNotLoss = {"lr", "images_per_s", "prune_ratio", "sparsity"};
  std::vector<Series> loss;
  for (const auto& [k, pts] : m.series)
    if (!kNotLoss.count(k) && k.rfind("eval_", 0) != 0) loss.push_back({k, pts});
  std::sort(loss.begin(), loss.end(), [](const Series& a, const Series& b) {  // "loss" first
    return std::make_pair(a.name != "loss", a.name) < std::make_pair(b.name != "loss", b.name);
  });
  if (!loss.empty())
    plots.push_back({"loss", "Objective and its terms (mean over ranks, per logging interval); "
                             "a term equal to the objective runs along its line, dashed.",
                     lineChart({"Loss terms", "iteration", "loss (dimensionless)"}, loss)});
  else
    missing.push_back("loss (no training lines in metrics.jsonl)");
  if (auto lr = get("lr"); !lr.empty())
    plots.push_back({"lr", "Learning rate of the student's optimizer.",
                     lineChart({"Learning rate", "iteration", "learning rate (per step)", 0},
                               {{"lr", lr}})});
  if (auto planned = get("prune_ratio"); !planned.empty())
    plots.push_back({"gmp", "GMP schedule: the ratio planned for each iteration (dashed) and the "
                            "share of zeros actually in the pruned weights (solid).",
                     lineChart({"GMP sparsity: planned vs achieved", "iteration",
                                "zeros in the pruned weights (%)", 0, 100},
                               {{"achieved sparsity", percent(get("sparsity"))},
                                {"planned ratio", percent(planned)}})});
  else
    missing.push_back("GMP schedule (no pruning in this run)");
  if (!in.layer_sparsity.empty()) {
    std::vector<std::pair<std::string, double>> bars = in.layer_sparsity;
    for (auto& b : bars) b.second *= 100;
    plots.push_back({"layer_sparsity", "Share of zeros in each pruned layer's weight at the end "
                                       "(hover a bar or label for the full name).",
                     barChart({"Per-layer sparsity", "layer (node)", "zeros in the weight (%)", 0,
                               100}, bars)});
  }
  if (!in.act_scales.empty())
    plots.push_back({"act_scales", "Activation quantizer ranges (abs-max, in the tensor's own "
                                   "units) at the end, per quantized input tensor.",
                     barChart({"Per-layer activation ranges", "quantized input tensor",
                               "abs-max range (activation units)", 0}, in.act_scales)});
  else
    missing.push_back("activation scales (no quantization in this run)");
  if (!in.pact_alphas.empty())
    plots.push_back({"pact_alphas", "PACT clipping thresholds (alpha) at the end.",
                     barChart({"PACT alphas", "quantized input tensor",
                               "alpha (activation units)", 0}, in.pact_alphas)});
  YAML::Node rj;
  try {
    rj = YAML::Load(in.report_json);
  } catch (const YAML::Exception&) {
  }
  const MetricNames mn = metricNames(rj);
  auto scaled = [&](Points p) { return mn.fraction ? percent(std::move(p)) : p; };
  std::vector<Series> top1;
  if (auto s = get("eval_teacher_" + mn.key); !s.empty()) top1.push_back({"teacher", scaled(s)});
  if (auto s = get("eval_" + mn.key); !s.empty()) top1.push_back({"student", scaled(s)});
  if (!top1.empty())
    plots.push_back({"top1", "Eval " + mn.label + " on the evaluation set (student: fake-quant, "
                             "masked).",
                     lineChart({"Eval " + mn.label + ": teacher vs student", "iteration",
                                mn.fraction ? mn.label + " (%)" : mn.label, 0,
                                mn.fraction ? 100.0 : INFINITY},
                               top1)});
  else
    missing.push_back("eval " + mn.label + " (no evaluation set)");

  fs::create_directories(fs::path(in.save_dir) / "plots");
  for (const auto& p : plots) {
    std::ofstream f(fs::path(in.save_dir) / "plots" / (p.name + ".svg"));
    f << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" << p.svg << "\n";
    if (!f) SLIM_THROW(Error, "cannot write ", in.save_dir, "/plots/", p.name, ".svg");
  }
  const std::string path = in.save_dir + "/report.html";
  std::ofstream h(path);
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<title>slimtrain report: " << esc(in.title) << "</title><style>"
    << "body{font-family:sans-serif;max-width:720px;margin:2em auto;color:#222}"
    << "figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}"
    << "pre{background:#f5f5f5;padding:1em;overflow-x:auto;font-size:80%}"
    << "table.summary{border-collapse:collapse;margin:1em 0}"
    << "table.summary th,table.summary td{text-align:left;padding:.25em .8em;"
    << "border-bottom:1px solid #ddd}table.summary th{font-weight:normal;color:#444}"
    << "table.summary td:nth-child(2){font-weight:bold}</style></head><body>\n"
    << "<h1>slimtrain compression report: " << esc(in.title) << "</h1>\n"
    << summaryTable(in.report_json);
  for (const auto& p : plots)
    h << "<figure id=\"" << p.name << "\">" << p.svg << "<figcaption>" << esc(p.caption)
      << " (also <code>plots/" << p.name << ".svg</code>)</figcaption></figure>\n";
  if (!missing.empty()) {
    h << "<p>Not plotted:</p><ul>";
    for (const auto& s : missing) h << "<li>" << esc(s) << "</li>";
    h << "</ul>\n";
  }
  h << "<details><summary>report.json</summary><pre>" << esc(prettyJson(in.report_json))
    << "</pre></details>\n"
    << "<script>/* self-check read by the headless-browser test */\n"
    << "document.body.dataset.plots = document.querySelectorAll('svg.plot').length;\n"
    << "</script>\n</body></html>\n";
  if (!h) SLIM_THROW(Error, "cannot write ", path);
  return path;
}

}  // namespace slim::train
