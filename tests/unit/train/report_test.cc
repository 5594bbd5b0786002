// report.html's charts: ranges (a single point gets a narrow range inside the
// quantity's domain, not -1..1), axis labels on line and bar charts, one dash
// pattern per series, shortened bar labels with the full name as tooltip, and
// layer names for exporter-named weights (onnx::Conv_214 -> its Conv node).
#include <gtest/gtest.h>

#include <regex>

#include "trainer/train/report_html.h"
#include "trainer/train/report_svg.h"

namespace slim::train {
namespace {

double attr(const std::string& svg, const std::string& name) {
  std::smatch m;
  const std::regex re(name + "=\"([-0-9.e+]+)\"");
  EXPECT_TRUE(std::regex_search(svg, m, re)) << name << " missing in " << svg.substr(0, 300);
  return std::stod(m[1]);
}

size_t count(const std::string& s, const std::string& sub) {
  size_t n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + 1)) ++n;
  return n;
}

TEST(ReportSvg, NiceRangeOfOnePointStaysNearItAndInTheDomain) {
  double lo = 89.34, hi = 89.34;
  double step = niceRange(lo, hi, 0, 100);
  EXPECT_LE(lo, 89.34);
  EXPECT_GE(hi, 89.34);
  EXPECT_GE(lo, 80);
  EXPECT_LE(hi, 100);
  EXPECT_GT(step, 0);
  lo = hi = 0;  // a zero top-1: 0..1, not -1..1
  niceRange(lo, hi, 0, 100);
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 1);
  lo = hi = 100;  // on the domain's upper edge
  niceRange(lo, hi, 0, 100);
  EXPECT_LT(lo, 100);
  EXPECT_EQ(hi, 100);
  lo = -0.37, hi = 2.6;  // unbounded: round ticks around the data
  step = niceRange(lo, hi);
  EXPECT_DOUBLE_EQ(step, 1);
  EXPECT_DOUBLE_EQ(lo, -1);
  EXPECT_DOUBLE_EQ(hi, 3);
}

TEST(ReportSvg, LineChartHasAxisLabelsAndDistinctSeries) {
  const std::vector<Series> s = {{"loss", {{10, 0.5}, {20, 0.25}}},
                                 {"distill/logits", {{10, 0.5}, {20, 0.25}}}};
  const std::string svg = lineChart({"Loss terms", "iteration", "loss (dimensionless)"}, s);
  EXPECT_NE(svg.find("class=\"axis-label x\""), std::string::npos);
  EXPECT_NE(svg.find(">iteration</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss (dimensionless)</text>"), std::string::npos);
  // The second series is dashed (in the plot and in its legend), the first is not.
  EXPECT_EQ(count(svg, "stroke-dasharray=\"8 4\""), 2u);
  EXPECT_EQ(count(svg, "stroke-dasharray"), 2u);
  EXPECT_EQ(count(svg, "<g class=\"series\""), 2u);
  EXPECT_LE(attr(svg, "data-ymin"), 0.25);
  EXPECT_GE(attr(svg, "data-ymax"), 0.5);
}

TEST(ReportSvg, OnePointChartGetsASensibleRange) {
  const std::string svg = lineChart({"top-1", "iteration", "top-1 accuracy (%)", 0, 100},
                                    {{"teacher", {{60, 91.2}}}, {"student", {{60, 90.8}}}});
  const double lo = attr(svg, "data-ymin"), hi = attr(svg, "data-ymax");
  EXPECT_GE(lo, 0);
  EXPECT_LE(hi, 100);
  EXPECT_LE(lo, 90.8);
  EXPECT_GE(hi, 91.2);
  EXPECT_LE(hi - lo, 25);
  EXPECT_NE(svg.find("<circle"), std::string::npos) << "a single point needs a marker";
}

TEST(ReportSvg, BarLabelsAreShortenedWithTheFullNameAsTooltip) {
  const std::string longname = "/layer4/layer4.1/conv2/Conv_with_a_long_suffix";
  const std::string svg =
      barChart({"Per-layer sparsity", "layer (node)", "zeros in the weight (%)", 0, 100},
               {{longname, 50}, {"fc", 25}});
  EXPECT_NE(svg.find("<title>" + longname + "</title>"), std::string::npos);
  EXPECT_NE(svg.find(shortLabel(longname, 24) + "</text>"), std::string::npos);
  EXPECT_EQ(shortLabel(longname, 24).size(), 23u + std::string("\u2026").size());
  EXPECT_NE(svg.find(">layer (node)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">zeros in the weight (%)</text>"), std::string::npos);
  EXPECT_EQ(shortLabel("fc", 24), "fc");
}

TEST(ReportHtml, LayerNamesReplaceExporterNames) {
  graph::Graph g;
  g.inputs.push_back({"x", {-1, 3, 8, 8}, DType::kF32});
  g.addInitializer("onnx::Conv_214", Tensor({4, 3, 3, 3}), true);
  g.addInitializer("fc.weight", Tensor({10, 4}), true);
  g.nodes.push_back({"/layer1/conv/Conv", "Conv", {"x", "onnx::Conv_214"}, {"onnx::Relu_5"}, {}});
  g.nodes.push_back({"", "Relu", {"onnx::Relu_5"}, {"relu_out"}, {}});
  g.nodes.push_back({"", "Gemm", {"relu_out", "fc.weight"}, {"logits"}, {}});
  EXPECT_EQ(layerName(g, "onnx::Conv_214"), "/layer1/conv/Conv");
  EXPECT_EQ(layerName(g, "fc.weight"), "logits");  // unnamed node: its output
  EXPECT_EQ(layerName(g, "onnx::Relu_5"), "/layer1/conv/Conv");
  EXPECT_EQ(layerName(g, "relu_out"), "relu_out");  // a readable activation name stays
  EXPECT_EQ(layerName(g, "unused"), "unused");
}

}  // namespace
}  // namespace slim::train
