// The compression report page: hand-written SVG charts (line and bar) from
// metrics.jsonl and the final state, embedded in one HTML file.
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

namespace slim::train {
namespace {

using Points = std::vector<std::pair<double, double>>;
struct Series {
  std::string name;
  Points points;
};

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf"};
constexpr double kW = 640, kH = 320, kLeft = 70, kRight = 20, kTop = 36, kBottom = 60;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  char b[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) std::snprintf(b, sizeof b, "%.2g", v);
  else std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// [lo, hi] widened to round tick steps; returns the step.
double niceRange(double& lo, double& hi) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  return step;
}

std::string svgOpen(const std::string& title) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" << kW << "\" height=\""
    << kH << "\" viewBox=\"0 0 " << kW << " " << kH << "\" font-family=\"sans-serif\" "
    << "font-size=\"11\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    << "<text x=\"" << kW / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">"
    << esc(title) << "</text>";
  return o.str();
}

// Y axis with grid lines; maps value -> pixel.
struct YAxis {
  double lo, hi, step;
  double px(double v) const { return kH - kBottom - (v - lo) / (hi - lo) * (kH - kTop - kBottom); }
  std::string draw() const {
    std::ostringstream o;
    for (double v = lo; v <= hi + step / 2; v += step) {
      const double y = px(v);
      o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << y << "\" y2=\"" << y
        << "\" stroke=\"#ddd\"/><text x=\"" << kLeft - 6 << "\" y=\"" << y + 4
        << "\" text-anchor=\"end\">" << num(v) << "</text>";
    }
    return o.str();
  }
};

std::string lineChart(const std::string& title, const std::string& xlabel,
                      const std::vector<Series>& series) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  YAxis ya{y0, y1, 0};
  ya.step = niceRange(ya.lo, ya.hi);
  double xlo = x0, xhi = x1;
  const double xstep = niceRange(xlo, xhi);
  auto px = [&](double x) { return kLeft + (x - xlo) / (xhi - xlo) * (kW - kLeft - kRight); };
  std::ostringstream o;
  o << svgOpen(title) << ya.draw();
  for (double v = xlo; v <= xhi + xstep / 2; v += xstep)
    o << "<text x=\"" << px(v) << "\" y=\"" << kH - kBottom + 16 << "\" text-anchor=\"middle\">"
      << num(v) << "</text>";
  o << "<text x=\"" << (kLeft + kW - kRight) / 2 << "\" y=\"" << kH - kBottom + 32
    << "\" text-anchor=\"middle\">" << esc(xlabel) << "</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % 8];
    o << "<polyline class=\"series\" fill=\"none\" stroke-width=\"1.5\" stroke=\"" << color
      << "\" points=\"";
    for (auto [x, y] : series[i].points) o << px(x) << "," << ya.px(y) << " ";
    o << "\"/>";
    if (series[i].points.size() == 1) {
      auto [x, y] = series[i].points[0];
      o << "<circle cx=\"" << px(x) << "\" cy=\"" << ya.px(y) << "\" r=\"3\" fill=\"" << color << "\"/>";
    }
    const double lx = kLeft + 10 + 150 * static_cast<double>(i % 4);
    const double ly = kH - 12 - 14 * static_cast<double>(i / 4);
    o << "<rect x=\"" << lx << "\" y=\"" << ly - 8 << "\" width=\"10\" height=\"10\" fill=\"" << color
      << "\"/><text x=\"" << lx + 14 << "\" y=\"" << ly + 1 << "\">" << esc(series[i].name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string barChart(const std::string& title,
                     const std::vector<std::pair<std::string, double>>& bars) {
  double y1 = 0;
  for (const auto& b : bars) y1 = std::max(y1, b.second);
  YAxis ya{0, y1, 0};
  ya.step = niceRange(ya.lo, ya.hi);
  const double slot = (kW - kLeft - kRight) / static_cast<double>(bars.size());
  std::ostringstream o;
  o << svgOpen(title) << ya.draw();
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x = kLeft + slot * static_cast<double>(i), y = ya.px(bars[i].second);
    o << "<rect class=\"bar\" x=\"" << x + slot * 0.15 << "\" y=\"" << y << "\" width=\""
      << slot * 0.7 << "\" height=\"" << ya.px(0) - y << "\" fill=\"" << kColors[0]
      << "\"><title>" << esc(bars[i].first) << ": " << num(bars[i].second) << "</title></rect>";
    const double cx = x + slot / 2, cy = kH - kBottom + 10;
    o << "<text x=\"" << cx << "\" y=\"" << cy << "\" text-anchor=\"end\" transform=\"rotate(-35 "
      << cx << " " << cy << ")\" font-size=\"9\">" << esc(bars[i].first) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

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
    plots.push_back({"loss", "Objective and its terms (mean over ranks, per logging interval).",
                     lineChart("Loss terms", "iteration", loss)});
  else
    missing.push_back("loss (no training lines in metrics.jsonl)");
  if (auto lr = get("lr"); !lr.empty())
    plots.push_back({"lr", "Learning rate of the student's optimizer.",
                     lineChart("Learning rate", "iteration", {{"lr", lr}})});
  if (auto planned = get("prune_ratio"); !planned.empty())
    plots.push_back({"gmp", "GMP schedule: the ratio planned for each iteration and the share of "
                            "zeros actually in the pruned weights.",
                     lineChart("GMP sparsity: planned vs achieved", "iteration",
                               {{"planned ratio", planned}, {"achieved sparsity", get("sparsity")}})});
  else
    missing.push_back("GMP schedule (no pruning in this run)");
  if (!in.layer_sparsity.empty())
    plots.push_back({"layer_sparsity", "Share of zeros per pruned parameter at the end.",
                     barChart("Per-layer sparsity", in.layer_sparsity)});
  if (!in.act_scales.empty())
    plots.push_back({"act_scales", "Activation quantizer scales (abs-max range) at the end, per "
                                   "quantized input tensor.",
                     barChart("Per-layer activation scales", in.act_scales)});
  else
    missing.push_back("activation scales (no quantization in this run)");
  if (!in.pact_alphas.empty())
    plots.push_back({"pact_alphas", "PACT clipping thresholds (alpha) at the end.",
                     barChart("PACT alphas", in.pact_alphas)});
  YAML::Node rj;
  try {
    rj = YAML::Load(in.report_json);
  } catch (const YAML::Exception&) {
  }
  const MetricNames mn = metricNames(rj);
  std::vector<Series> top1;
  if (auto s = get("eval_teacher_" + mn.key); !s.empty()) top1.push_back({"teacher", s});
  if (auto s = get("eval_" + mn.key); !s.empty()) top1.push_back({"student", s});
  if (!top1.empty())
    plots.push_back({"top1", "Eval " + mn.label + " on the evaluation set (student: fake-quant, "
                             "masked).",
                     lineChart("Eval " + mn.label + ": teacher vs student", "iteration", top1)});
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
