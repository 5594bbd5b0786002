// Direct depthwise convolution (group == C) by polyphase decomposition: the
// zero-padded input plane is split into sh*sw phase planes (row phase a,
// column phase b) of Hh x Wh, phase(a,b)[i][j] = xpad[i*sh + a][j*sw + b].
// Tap (kh, kw) of any stride/dilation then reads the phase planes at a
// constant offset from the output position when the output is laid out
// "wide" (OH rows of Wh; columns OW..Wh-1 are scratch, backward zeroes them
// in dy so they contribute nothing).
//
// Two kernels with the same bits (the tests compare them):
// - channel vectors (mult == 1, C % 8 == 0; used for planes narrower than 8
//   outputs): the image is transposed (8 x 8 blocks) into phase planes
//   blocked by 8 channels, and every output position computes eight channels
//   per vector, which keeps 7 x 7 planes from being mostly padding.
// - per channel (any mult, any C; the wider planes): the channel's input
//   rows are copied into its phase planes (DepthwisePlan::in_moves), the taps
//   stream over the wide output in fused passes of up to 13 (forward), each
//   tap is one dot product (dw, several taps a pass), and dx is gathered per
//   phase plane from its taps.
// Per element both do the same operations in the same order: y = b + sum over
// taps in ascending order; dw per tap from 8 interleaved partial sums over
// the wide positions, folded in a fixed order, plus the tail in order; dx
// per phase plane from its taps in ascending order, plus zero.
#include <algorithm>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/depthwise_kernels.h"

namespace slim::ops::detail {

DepthwisePlan::DepthwisePlan(const Axis& h, const Axis& w) : ah(h), aw(w) {
  sh = ah.stride;
  sw = aw.stride;
  Hh = ceilDiv(ah.pad_begin + ah.in + ah.pad_end, sh);
  Wh = ceilDiv(aw.pad_begin + aw.in + aw.pad_end, sw);
  // Slack: wide-output scratch columns may read up to Wh past the last row,
  // and the per-channel kernels' 8-blocks 7 past their range.
  plane = (Hh + 1) * Wh + 16;
  const int64_t KH = ah.kernel, KW = aw.kernel, nphase = sh * sw;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t rh = kh * ah.dilation, rw = kw * aw.dilation;
      taps.push_back(((rh % sh) * sw + rw % sw) * plane + (rh / sh) * Wh + rw / sw);
    }
  phase_begin.assign(static_cast<size_t>(nphase + 1), 0);
  for (int64_t k = 0; k < nphase; ++k) {
    phase_begin[k] = static_cast<int64_t>(phase_tap.size());
    for (int64_t t = 0; t < KH * KW; ++t)
      if (taps[t] / plane == k) {
        phase_tap.push_back(t);
        phase_off.push_back(taps[t] - k * plane);
      }
  }
  phase_begin[nphase] = static_cast<int64_t>(phase_tap.size());
  // Input cells: row ih is padded row ih + pad (phase a, row i), column iw
  // padded column iw + pad (phase b, column j); counters instead of divisions.
  std::vector<char> covered(static_cast<size_t>(total()), 0);
  int64_t a = ah.pad_begin % sh, i = ah.pad_begin / sh;
  for (int64_t ih = 0; ih < ah.in; ++ih) {
    int64_t b = aw.pad_begin % sw, j = aw.pad_begin / sw;
    for (int64_t iw = 0; iw < aw.in; ++iw) {
      const int64_t pos = (a * sw + b) * plane + i * Wh + j;
      in_pos.push_back(pos);
      in_phase.push_back(static_cast<int32_t>(a * sw + b));
      covered[pos] = 1;
      if (++b == sw) { b = 0; ++j; }
    }
    if (++a == sh) { a = 0; ++i; }
  }
  for (int64_t pos = 0; pos < total(); ++pos)
    if (!covered[pos]) border.push_back(pos);
  dy_lo = phase_off.empty() ? 0 : *std::max_element(phase_off.begin(), phase_off.end());
  int64_t last = -1;  // largest in-plane position of an input cell
  for (size_t k = 0; k < in_pos.size(); ++k) last = std::max(last, in_pos[k] - in_phase[k] * plane);
  dy_hi = std::max<int64_t>(0, last + 1 - wide());
  for (int64_t oh = 0; oh < ah.out; ++oh)
    for (int64_t ow = 0; ow < Wh; ++ow) (ow < aw.out ? out_pos : scratch_q).push_back(oh * Wh + ow);
  phase_lo.assign(static_cast<size_t>(nphase), 0);
  phase_hi.assign(static_cast<size_t>(nphase), 0);
  std::vector<char> seen(static_cast<size_t>(nphase), 0);
  for (size_t k = 0; k < in_pos.size(); ++k) {
    const int64_t ph = in_phase[k], p = in_pos[k] - ph * plane;
    phase_lo[ph] = seen[ph] ? std::min(phase_lo[ph], p) : p;
    phase_hi[ph] = seen[ph] ? std::max(phase_hi[ph], p + 1) : p + 1;
    seen[ph] = 1;
  }
  // Row moves: cells (ih, iw) and (ih, iw + sw) sit next to each other in
  // one phase plane (in_pos was built row by row, column phase cycling).
  for (int64_t ih = 0; ih < ah.in; ++ih)
    for (int64_t b = 0; b < std::min(sw, aw.in); ++b) {
      const int64_t k = ih * aw.in + b;
      in_moves.push_back({k, in_pos[k], (aw.in - b + sw - 1) / sw});
    }
}

namespace {

// Channel vectors for planes narrower than one 8-lane block (the per-channel
// kernels' rows would be mostly padding), per channel otherwise: measured on
// mobilenet_tiny's and mobilenet_v2's depthwise shapes (README, Performance).
bool useChannelVectors(const DepthwisePlan& plan, int64_t c, int64_t mult, DepthwiseKernel k) {
  if (mult != 1 || c % 8 != 0 || k == DepthwiseKernel::kPerChannel) return false;
  return k == DepthwiseKernel::kChannelVectors || plan.aw.out < 8;
}

}  // namespace

void depthwiseForward(const DepthwisePlan& plan, const float* x, const float* w,
                      const float* bias, int64_t c, int64_t mult, float* y,
                      std::vector<float>& scratch, DepthwiseKernel kernel) {
  if (useChannelVectors(plan, c, mult, kernel))
    depthwise::forwardChannelVectors(plan, x, w, bias, c, y, scratch);
  else
    depthwise::forwardPerChannel(plan, x, w, bias, c, mult, y, scratch);
}

void depthwiseBackward(const DepthwisePlan& plan, const float* x, const float* w,
                       const float* dy, int64_t c, int64_t mult, float* dx, float* dw,
                       std::vector<float>& scratch, DepthwiseKernel kernel) {
  if (useChannelVectors(plan, c, mult, kernel))
    depthwise::backwardChannelVectors(plan, x, w, dy, c, dx, dw, scratch);
  else
    depthwise::backwardPerChannel(plan, x, w, dy, c, mult, dx, dw, scratch);
}

}  // namespace slim::ops::detail
