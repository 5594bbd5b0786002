// Fake-quantization arithmetic shared by the quant ops, the QAT pass and the
// exporter (SEMANTICS.md §2 "Numerics", act-reference §4.2): the scale s is
// the abs-max clip range, bin = 2^(b-1) - 1, q = clamp(round_half_even(x /
// (s / bin)), -bin-1, bin), y = q * (s / bin). The step s / bin is computed
// once in float and x is divided by it, which is exactly what ONNX
// QuantizeLinear does with scale = s / bin, so an exported QDQ model
// reproduces these values bit for bit.
#pragma once

#include <cstdint>

namespace slim::compress {

/// Largest positive quantized value: 2^(bits-1) - 1 (127 for 8 bits).
/// @param bits 2..16 (throws slim::Error otherwise: 1 bit gives bin = 0)
int32_t quantBinCount(int bits);

/// Quantization step s / bin in float; 0 when s == 0.
/// @param scale abs-max clip range s (>= 0)
/// @param bits  2..16
float quantStep(float scale, int bits);

/// The integer level of x: clamp(round_half_even(x / step), -bin-1, bin).
/// @param x    value
/// @param step quantStep(s, bits); must be > 0
/// @param bits 2..16
int32_t quantizeValue(float x, float step, int bits);

/// The activation step the QDQ export writes for clip range `scale`:
/// quantStep(scale, bits), or 1e-30 when that is not > 0 (an all-zero or
/// NaN observer; the quantized values are 0 there anyway).
float exportActivationStep(float scale, int bits);

/// The step of an int32 bias as QLinearConv / QGemm add it: the float
/// product act_step * weight_step, a zero weight step (an all-zero
/// channel) counted as 1, as the export stores it.
float biasStep(float act_step, float weight_step);

/// The int32 level of bias b (a float, or a folded bias in double) on
/// `step` (biasStep): round_half_even(b / step) computed in double,
/// saturated to the int32 range; 0 for NaN. The export stores it; the
/// fake-quant bias is level * step in float, what DequantizeLinear gives
/// back.
int32_t quantizeBias(double b, float step);

/// Fake-quantizes n values with one scale: y = q * step. A zero scale (or a
/// step that underflows to 0) gives zeros, never NaN; a NaN scale gives NaNs.
/// `x` and `y` may alias.
/// @param x     input values
/// @param y     output values (n floats)
/// @param n     number of values
/// @param scale abs-max clip range s
/// @param bits  2..16
/// @param clip  when given, x_i is first clipped to [-*clip, *clip] exactly as
///              PACT clips (min(a, max(-a, x))): PACT and the quantizer fused
void fakeQuantize(const float* x, float* y, int64_t n, float scale, int bits,
                  const float* clip = nullptr);

/// max |x_i| over n values (0 for n == 0; NaN if any value is NaN).
float absMax(const float* x, int64_t n);
/// The same on one thread, for a block: returns max |x_i| (0 for n == 0, a
/// NaN if any value is NaN) and sets *nan when a value is NaN (leaves it
/// alone otherwise).
float absMaxBlock(const float* x, int64_t n, bool* nan);

/// Per-channel abs-max of a tensor viewed as (outer, C, inner) where C is the
/// size of the quantization axis: scales[c] = max |x[o, c, i]|.
/// @param x      tensor data, outer * C * inner floats
/// @param scales output, C floats
void channelAbsMax(const float* x, int64_t outer, int64_t C, int64_t inner, float* scales);

/// Per-channel fake quantization of a tensor viewed as (outer, C, inner),
/// channel c using scales[c]. `x` and `y` may alias.
void fakeQuantizeChannels(const float* x, float* y, int64_t outer, int64_t C, int64_t inner,
                          const float* scales, int bits);

}  // namespace slim::compress
