// SVG line and bar charts for report.html.
#include "trainer/train/report_svg.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace slim::train {
namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf"};
// Series i: dash pattern i % 4 and marker i % 4; the first line is the
// widest, so a later one drawn over it leaves it visible on both sides.
const char* const kDashes[] = {"", "8 4", "3 3", "10 3 3 3"};
constexpr size_t kMaxMarkers = 20;  // per series
constexpr size_t kLabelChars = 24;  // bar labels

struct Frame {
  double w, h, left, right, top, bottom;
  double plotBottom() const { return h - bottom; }
  double plotWidth() const { return w - left - right; }
};
constexpr Frame kLineFrame{640, 356, 78, 20, 36, 96};  // 3 legend rows
constexpr Frame kBarFrame{640, 390, 78, 20, 36, 130};

std::string num(double v) {
  char b[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) std::snprintf(b, sizeof b, "%.2g", v);
  else std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// Y axis with grid lines and its label; maps value -> pixel.
struct YAxis {
  Frame f;
  double lo, hi, step;
  double px(double v) const {
    return f.plotBottom() - (v - lo) / (hi - lo) * (f.plotBottom() - f.top);
  }
  std::string draw(const std::string& label) const {
    std::ostringstream o;
    for (double v = lo; v <= hi + step / 2; v += step) {
      const double y = px(v);
      o << "<line x1=\"" << f.left << "\" x2=\"" << f.w - f.right << "\" y1=\"" << y << "\" y2=\""
        << y << "\" stroke=\"#ddd\"/><text x=\"" << f.left - 6 << "\" y=\"" << y + 4
        << "\" text-anchor=\"end\">" << num(v) << "</text>";
    }
    const double mid = (f.top + f.plotBottom()) / 2;
    o << "<text class=\"axis-label y\" x=\"16\" y=\"" << mid << "\" text-anchor=\"middle\" "
      << "transform=\"rotate(-90 16 " << mid << ")\">" << esc(label) << "</text>";
    return o.str();
  }
};

std::string svgOpen(const Frame& f, const ChartSpec& spec, const YAxis& ya) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" << f.w
    << "\" height=\"" << f.h << "\" viewBox=\"0 0 " << f.w << " " << f.h << "\" data-ymin=\""
    << ya.lo << "\" data-ymax=\"" << ya.hi << "\" font-family=\"sans-serif\" font-size=\"11\">"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"" << f.w / 2
    << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">" << esc(spec.title) << "</text>";
  return o.str();
}

std::string xLabel(const Frame& f, const std::string& label) {
  std::ostringstream o;
  o << "<text class=\"axis-label x\" x=\"" << (f.left + f.w - f.right) / 2 << "\" y=\""
    << f.plotBottom() + 34 << "\" text-anchor=\"middle\">" << esc(label) << "</text>";
  return o.str();
}

std::string marker(size_t kind, double x, double y, const char* color) {
  std::ostringstream o;
  switch (kind % 4) {
    case 0:
      o << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"3.5\"";
      break;
    case 1:
      o << "<rect x=\"" << x - 3 << "\" y=\"" << y - 3 << "\" width=\"6\" height=\"6\"";
      break;
    case 2:
      o << "<path d=\"M" << x << " " << y - 4 << "L" << x + 4 << " " << y + 3 << "L" << x - 4
        << " " << y + 3 << "Z\"";
      break;
    default:
      o << "<path d=\"M" << x << " " << y - 4 << "L" << x + 4 << " " << y << "L" << x << " "
        << y + 4 << "L" << x - 4 << " " << y << "Z\"";
  }
  o << " fill=\"white\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>";
  return o.str();
}

}  // namespace

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

double niceRange(double& lo, double& hi, double dmin, double dmax) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  lo = std::max(lo, dmin);
  hi = std::min(hi, dmax);
  if (!(hi > lo)) hi = lo + 1;  // a point on the domain's edge
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  lo = std::max(std::floor(lo / step) * step, dmin);
  hi = std::min(std::ceil(hi / step) * step, dmax);
  return step;
}

std::string shortLabel(const std::string& s, size_t max) {
  if (s.size() <= max || max < 2) return s;
  return "\u2026" + s.substr(s.size() - (max - 1));
}

std::string lineChart(const ChartSpec& spec, const std::vector<Series>& series) {
  const Frame& f = kLineFrame;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  if (!(x0 <= x1)) x0 = x1 = y0 = y1 = 0;  // no points at all
  YAxis ya{f, y0, y1, 0};
  ya.step = niceRange(ya.lo, ya.hi, spec.ymin, spec.ymax);
  double xlo = x0 >= 0 ? 0 : x0, xhi = x1;
  const double xstep = niceRange(xlo, xhi);
  auto px = [&](double x) { return f.left + (x - xlo) / (xhi - xlo) * f.plotWidth(); };
  std::ostringstream o;
  o << svgOpen(f, spec, ya) << ya.draw(spec.ylabel);
  for (double v = xlo; v <= xhi + xstep / 2; v += xstep)
    o << "<text x=\"" << px(v) << "\" y=\"" << f.plotBottom() + 16
      << "\" text-anchor=\"middle\">" << num(v) << "</text>";
  o << xLabel(f, spec.xlabel);
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % 8];
    const char* dash = kDashes[i % 4];
    const double width = i == 0 ? 2.5 : 1.6;
    o << "<g class=\"series\" data-name=\"" << esc(series[i].name) << "\"><polyline fill=\"none\" "
      << "stroke-width=\"" << width << "\" stroke=\"" << color << "\"";
    if (*dash) o << " stroke-dasharray=\"" << dash << "\"";
    o << " points=\"";
    for (auto [x, y] : series[i].points) o << px(x) << "," << ya.px(y) << " ";
    o << "\"/>";
    // Markers on at most kMaxMarkers points, offset per series so that
    // coinciding series show alternating markers.
    const size_t n = series[i].points.size();
    const size_t every = std::max<size_t>(1, (n + kMaxMarkers - 1) / kMaxMarkers);
    for (size_t k = i % every; k < n; k += every)
      o << marker(i, px(series[i].points[k].first), ya.px(series[i].points[k].second), color);
    o << "</g>";
    const double lx = f.left + 10 + 180 * static_cast<double>(i % 3);
    const double ly = f.plotBottom() + 52 + 15 * static_cast<double>(i / 3);
    o << "<line x1=\"" << lx << "\" x2=\"" << lx + 24 << "\" y1=\"" << ly - 4 << "\" y2=\""
      << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"" << width << "\"";
    if (*dash) o << " stroke-dasharray=\"" << dash << "\"";
    o << "/>" << marker(i, lx + 12, ly - 4, color) << "<text class=\"legend\" x=\"" << lx + 28
      << "\" y=\"" << ly << "\"><title>" << esc(series[i].name) << "</title>"
      << esc(shortLabel(series[i].name, 22)) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string barChart(const ChartSpec& spec,
                     const std::vector<std::pair<std::string, double>>& bars) {
  const Frame& f = kBarFrame;
  double y1 = 0;
  for (const auto& b : bars) y1 = std::max(y1, b.second);
  YAxis ya{f, 0, y1, 0};
  ya.step = niceRange(ya.lo, ya.hi, spec.ymin, spec.ymax);
  const double slot = f.plotWidth() / static_cast<double>(std::max<size_t>(bars.size(), 1));
  // Labels 12 px apart at least: with narrow slots only every k-th is shown
  // (every bar keeps its full name in its tooltip).
  const size_t label_every = slot >= 12 ? 1 : static_cast<size_t>(std::ceil(12 / slot));
  std::ostringstream o;
  o << svgOpen(f, spec, ya) << ya.draw(spec.ylabel);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x = f.left + slot * static_cast<double>(i), y = ya.px(bars[i].second);
    o << "<rect class=\"bar\" x=\"" << x + slot * 0.15 << "\" y=\"" << y << "\" width=\""
      << slot * 0.7 << "\" height=\"" << ya.px(0) - y << "\" fill=\"" << kColors[0]
      << "\"><title>" << esc(bars[i].first) << ": " << num(bars[i].second) << "</title></rect>";
    if (i % label_every != 0) continue;
    const double cx = x + slot / 2 + 3, cy = f.plotBottom() + 8;
    o << "<text class=\"bar-label\" x=\"" << cx << "\" y=\"" << cy << "\" text-anchor=\"end\" "
      << "transform=\"rotate(-50 " << cx << " " << cy << ")\" font-size=\"9\"><title>"
      << esc(bars[i].first) << "</title>" << esc(shortLabel(bars[i].first, kLabelChars))
      << "</text>";
  }
  o << "<text class=\"axis-label x\" x=\"" << (f.left + f.w - f.right) / 2 << "\" y=\""
    << f.h - 10 << "\" text-anchor=\"middle\">" << esc(spec.xlabel) << "</text></svg>";
  return o.str();
}

}  // namespace slim::train
