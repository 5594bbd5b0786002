// Hand-written SVG charts for the compression report (report_html.h): line
// charts over iterations and bar charts per layer, with axis labels, one
// dash pattern and marker per series (so series that coincide stay
// distinguishable) and labels that do not overlap.
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace slim::train {

using Points = std::vector<std::pair<double, double>>;

struct Series {
  std::string name;
  Points points;
};

/// What a chart shows: title, axis labels (with units) and the values' domain
/// (a range never leaves it, e.g. 0..100 for a percentage).
struct ChartSpec {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  double ymin = -INFINITY;  ///< lowest value the quantity can take
  double ymax = INFINITY;   ///< highest value the quantity can take
};

/// Widens [lo, hi] to round tick steps and returns the step. An empty range
/// (one point, or all values equal) gets 10 % of the value on each side (1 at
/// zero); the result is clamped to [dmin, dmax].
double niceRange(double& lo, double& hi, double dmin = -INFINITY, double dmax = INFINITY);

/// "…" + the last `max` - 1 characters of `s` when it is longer than `max`
/// (the end of a layer path is what tells layers apart).
std::string shortLabel(const std::string& s, size_t max);

/// Escapes &, <, >, " for HTML/SVG text and attributes.
std::string esc(const std::string& s);

/// A line chart; x starts at 0 when every x is non-negative. The <svg> carries
/// data-ymin/data-ymax (the drawn y range) for tests.
std::string lineChart(const ChartSpec& spec, const std::vector<Series>& series);

/// A bar chart, one bar per (label, value); labels rotated and shortened,
/// each with a <title> holding the full label and value.
std::string barChart(const ChartSpec& spec,
                     const std::vector<std::pair<std::string, double>>& bars);

}  // namespace slim::train
