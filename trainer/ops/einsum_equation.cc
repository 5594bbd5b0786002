// Parsing Einsum's equation (see einsum_equation.h).
#include "trainer/ops/einsum_equation.h"

#include <array>

#include "trainer/core/error.h"

namespace slim::ops::einsum {

namespace {

Term parseTerm(const std::string& equation, const std::string& s) {
  Term t;
  t.text = s;
  for (size_t k = 0; k < s.size(); ++k) {
    const char c = s[k];
    if (c >= 'A' && c <= 'Z') {
      t.labels.push_back(c - 'A');
    } else if (c >= 'a' && c <= 'z') {
      t.labels.push_back(26 + (c - 'a'));
    } else if (c == '.' && s.compare(k, 3, "...") == 0 && !t.ellipsis) {
      t.labels.push_back(kEllipsis);
      t.ellipsis = true;
      k += 2;
    } else {
      SLIM_THROW(ModelError, "Einsum: equation '", equation, "': term '", s, "' has '", c,
                 "' (expected letters and at most one '...')");
    }
  }
  return t;
}

}  // namespace

Equation parseEquation(const std::string& equation) {
  Equation e;
  std::string eq;
  for (char c : equation)
    if (c != ' ') eq += c;
  if (eq.empty()) SLIM_THROW(ModelError, "Einsum: attribute 'equation' is missing or empty");
  const size_t arrow = eq.find("->");
  const bool is_explicit = arrow != std::string::npos;
  const std::string lhs = eq.substr(0, arrow);
  size_t start = 0;
  for (;;) {
    const size_t comma = lhs.find(',', start);
    e.inputs.push_back(parseTerm(equation, lhs.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::array<int, kLetters> count{};
  bool any_ellipsis = false;
  for (const Term& t : e.inputs) {
    any_ellipsis = any_ellipsis || t.ellipsis;
    for (int l : t.labels)
      if (l < kLetters) ++count[l];
  }
  if (is_explicit) {
    e.output = parseTerm(equation, eq.substr(arrow + 2));
    std::array<int, kLetters> seen{};
    for (int l : e.output.labels) {
      if (l == kEllipsis) continue;
      if (count[l] == 0)
        SLIM_THROW(ModelError, "Einsum: equation '", equation, "': output letter '", letterOf(l),
                   "' is in no input");
      if (seen[l]++)
        SLIM_THROW(ModelError, "Einsum: equation '", equation, "': output letter '", letterOf(l),
                   "' is repeated");
    }
    if (e.output.ellipsis && !any_ellipsis)
      SLIM_THROW(ModelError, "Einsum: equation '", equation,
                 "': the output has '...' but no input has");
  } else {
    // numpy's implicit output: "..." first, then the letters seen once,
    // in alphabetical (ASCII) order.
    if (any_ellipsis) {
      e.output.labels.push_back(kEllipsis);
      e.output.ellipsis = true;
    }
    for (int l = 0; l < kLetters; ++l)
      if (count[l] == 1) e.output.labels.push_back(l);
  }
  return e;
}

}  // namespace slim::ops::einsum
