// Edit-distance suggestions for misspelled names.
#include "trainer/config/suggest.h"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace slim::config {

size_t editDistance(const std::string& a0, const std::string& b0) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string a = lower(a0), b = lower(b0);
  const size_t n = a.size(), m = b.size();
  // d[i][j]: distance between a[:i] and b[:j]; full table for the swap rule.
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::vector<std::string> closestNames(const std::string& want,
                                      const std::vector<std::string>& candidates,
                                      size_t k) {
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<size_t> dist(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) dist[i] = editDistance(want, candidates[i]);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return dist[x] < dist[y]; });
  std::vector<std::string> out;
  for (size_t i = 0; i < order.size() && out.size() < k; ++i)
    out.push_back(candidates[order[i]]);
  return out;
}

std::string didYouMean(const std::string& want,
                       const std::vector<std::string>& candidates) {
  const auto best = closestNames(want, candidates, 1);
  if (best.empty()) return "";
  const size_t limit = std::max<size_t>(2, want.size() / 3);
  if (editDistance(want, best[0]) > limit) return "";
  return " (did you mean '" + best[0] + "'?)";
}

}  // namespace slim::config
