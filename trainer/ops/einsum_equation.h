// Einsum's equation (ONNX attribute `equation`, see einsum.cc): its terms as
// label lists. Letters 'A'..'Z' are labels 0..25 and 'a'..'z' 26..51 (ASCII
// order); "..." is kEllipsis until a call's ranks expand it.
#pragma once

#include <string>
#include <vector>

namespace slim::ops::einsum {

constexpr int kLetters = 52;     // 'A'..'Z' are 0..25, 'a'..'z' 26..51 (ASCII order)
constexpr int kEllipsis = 64;    // label of ellipsis dimension j: kEllipsis + j
constexpr int kMaxLabels = 128;  // kEllipsis + at most 64 ellipsis dimensions

inline char letterOf(int l) { return static_cast<char>(l < 26 ? 'A' + l : 'a' + (l - 26)); }

// One side of the equation: its labels in axis order, kEllipsis standing for
// the "..." (expanded per call, when the ranks are known).
struct Term {
  std::string text;
  std::vector<int> labels;
  bool ellipsis = false;
};

// The parsed equation: one term per input and the output's (numpy's implicit
// output when there is no "->": "..." first, then the letters seen once, in
// ASCII order).
struct Equation {
  std::vector<Term> inputs;
  Term output;
};

/// Parses `equation` (spaces ignored); throws ModelError naming the equation
/// for a missing equation, a character other than letters and one "...", an
/// output letter in no input or repeated, or an output "..." no input has.
Equation parseEquation(const std::string& equation);

}  // namespace slim::ops::einsum
