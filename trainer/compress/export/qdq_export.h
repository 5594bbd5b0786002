// Deployable exports of a compressed student (issue "Export that deploys"):
// the INT8 QDQ inference graph that ONNX Runtime runs with training's
// fake-quant numerics, and the FP32 student (pruned zeros kept) for
// prune-only configs. Both cut the student out of the merged training graph
// (no teacher_ nodes, no loss, no label input).
//
// QDQ layout (opset 13), per quantized op (Conv, Gemm, MatMul, ConvTranspose):
//   x -> QuantizeLinear(step_x, zp 128 uint8) -> DequantizeLinear -> op
//   weight: 8-bit initializer -> DequantizeLinear(per-channel step, axis 0
//           for Conv/depthwise, 1 for ConvTranspose, the output axis for Gemm
//           (transB=1: 0 of [N,K], else 1 of [K,N]) and MatMul (last axis)):
//           int8 q with no zero point (ONNX defaults it to 0) where the op's
//           input is non-negative (zero point 0, below), else uint8 q + 128
//           with a [C] zero point 128 (both exact in ORT on AVX2, see
//           QdqOptions::uint8_weights)
//   bias:   INT32 initializer -> DequantizeLinear(step_x * step_w[c], axis 0),
//           the bias QLinearConv / QGemm consume directly; its scale is a Mul
//           of the two step initializers (not stored twice; ORT folds it).
//           Training's FakeQuantBias computes the same value (exact).
//   output: op -> Q -> Clip(uint8 levels) -> DQ -> next quantized op when
//           only Relu / Clip lie between (QdqOptions::integer_clip; zero
//           point 0, levels 0..127, where they clip at >= 0), else
//           op -> Q -> DQ -> [Relu | Clip | MaxPool | Flatten | Reshape |
//           Identity ...] -> Q -> DQ -> next quantized op, only where exact.
// Numerics: training's quantizer is q = clamp(round_half_even(x / step),
// -128, 127), y = q * step with step = s / 127 (numerics.h). QuantizeLinear
// with scale `step` and uint8 zero point 128 computes q + 128 on the same grid
// (saturation at 0 / 255 is the clamp at -128 / 127), DequantizeLinear gives
// back q * step: bit-identical to training's fake quant. uint8 + zp 128 is the
// one layout ENVIRONMENT.md measured faster than FP32 in ORT (QLinearConv).
// Output Q/DQ: placed on a quantized op's output Y only when the single-consumer
// chain from Y to the next quantizer contains only ops f with Q(f(y)) ==
// Q(f(DQ(Q(y)))) elementwise (Relu, Clip with constant bounds, MaxPool, and
// value-preserving reshapes: monotone and piecewise identity/constant on the
// grid), and that quantizer uses the scale placed on Y; otherwise Y stays
// float (e.g. before GlobalAveragePool, or a residual Add when elementwise_add
// is not quantized), which is exact. A quantized Add (elementwise_add) reads
// its inputs through their Q/DQ pairs; its output gets one when a quantizer
// reads it, so ORT runs QLinearAdd and the convs around it as QLinearConv; a
// quantized pooling op (pool2d) likewise, e.g. GlobalAveragePool -> Flatten
// -> Gemm's quantizer gives QLinearGlobalAveragePool. A MatMul of two
// activations (attention) reads both through their Q/DQ pairs (ORT:
// MatMulIntegerToFloat, or QLinearMatMul with an output Q/DQ).
// BatchNormalization (inference, running stats) stays, stored compactly, by
// default (QdqOptions::compact_batch_norm). With
// QdqOptions::fold_batch_norm, one that is a quantized Conv's only consumer
// is folded instead: a_c = gamma_c / sqrt(var_c + eps); the int8 levels stay those
// training used, the channel step becomes |a_c| * step_c (levels negated when
// a_c < 0), the bias a_c (b_c - mean_c) + beta_c. Folding commutes with
// per-channel quantization (act-reference §4.7), so only float rounding and
// the int32 rounding of the bias (<= step_x * step_w'[c] / 2) differ from
// training's inference forward. PACT is dropped: at inference it is the
// identity, clipping is the quantizer's saturation (act-reference §4.6).
#pragma once

#include <string>
#include <vector>

#include "trainer/compress/quant/qat_pass.h"
#include "trainer/graph/graph.h"

namespace slim::compress {

struct QdqOptions {
  /// Insert Q/DQ on quantized ops' outputs where exact (see header comment).
  bool quantize_outputs = true;
  /// Fold BatchNormalization into the preceding quantized Conv (channel
  /// steps scaled, bias int32): lets ONNX Runtime fuse QLinearConv, but the
  /// int32 rounding of the folded bias moves ~1e-4 of the activation levels
  /// off training's (measured: fmnist_act ORT top-1 0.9027 vs fake-quant
  /// 0.9015). Off by default: the export then computes what training
  /// evaluated (ORT 0.9015).
  bool fold_batch_norm = false;
  /// An unfolded inference BatchNormalization is stored compactly: scale a =
  /// gamma * invstd, bias b = beta - mean * a (in the float arithmetic of
  /// slimtrain's BN kernel), mean 0 and a variance v with 1 / sqrt(v + eps)
  /// == 1 exactly, the last two shared by all BNs of C channels. The kernel
  /// then computes the same bits (y = fma(x, a, b)) from 8 bytes per channel
  /// instead of 16. false keeps the trained parameters.
  bool compact_batch_norm = true;
  /// Store biases of quantized Conv / Gemm as INT32 (step_x * step_w[c]);
  /// false keeps them float.
  bool int32_bias = true;
  /// Store the weight levels of ops with a signed input (zero point 128) as
  /// uint8 with zero point 128 (q + 128, the same grid); int8 stays where the
  /// input is non-negative (zero point 0). ORT's U8S8 kernels on x86 without
  /// VNNI (AVX2, AVX-512F) add pairs of u8*s8 products in int16 with
  /// saturation (vpmaddubsw): exact for levels <= 127, but with activations
  /// at zero point 128 it saturates often and the logits drift (measured
  /// here: up to 0.17 on the test net); U8U8 runs exact there. false = int8
  /// weights everywhere (U8S8): exact on VNNI / ARM and faster.
  bool uint8_weights = true;
  /// Where the chain between a quantized op's output and the next quantizer
  /// is only Relu / Clip, apply it to the uint8 levels (Q -> Clip(uint8) ->
  /// DQ) instead of DQ -> Relu/Clip -> Q: exact, since Q(clip(y, a, b)) ==
  /// clip(Q(y), Q(a), Q(b)) for monotone Q; Relu is Clip(0, inf). Saves two
  /// float passes per activation (measured ~30% of mobilenet_v2's ORT time).
  /// slimtrain's executor runs Clip on float only: set false to execute the
  /// graph with it.
  bool integer_clip = true;
};

/// The standalone INT8 QDQ inference graph of the student (layout above).
/// Weight scales are recomputed from the current weights (what the
/// FakeQuantWeight inference forward does); activation steps come from the
/// observers' scale buffers (QatInfo::activations[i].scale). Pruned zeros stay
/// exactly zero. Only ops `student_outputs` need are kept; graph inputs they
/// do not need (labels) are dropped; output shapes come from trained.outputs.
/// Activation quantizers in mode abs_max (dynamic at inference) are exported
/// with the last stored scale and a warning.
/// @param trained          merged training graph after training (insertQat applied)
/// @param qat              insertQat's result for `trained`
/// @param student_outputs  the student's output tensor names (e.g. {"logits"})
/// @param opts             layout switches
/// @return a graph of ONNX opset-13 ops, ready for models::exportOnnx
/// @throws ModelError when an output is not produced by the graph, activation
///         bits are not 8 or weight bits exceed 8 (QDQ opset 13 is 8-bit)
graph::Graph buildQdqGraph(const graph::Graph& trained, const QatInfo& qat,
                           const std::vector<std::string>& student_outputs,
                           const QdqOptions& opts = {});

/// The float student for prune-only configs: the ops `student_outputs` need,
/// initializers cloned (pruned zeros kept), Pact nodes removed. Should the
/// graph still hold fake quantizers, weights are replaced by their
/// fake-quantized values and activation quantizers are dropped (a float
/// approximation: use buildQdqGraph for QAT models).
/// @param trained          merged training graph
/// @param student_outputs  the student's output tensor names
/// @return a graph of ONNX ops, ready for models::exportOnnx
/// @throws ModelError when an output is not produced by the graph
graph::Graph exportFp32Student(const graph::Graph& trained,
                               const std::vector<std::string>& student_outputs);

/// The subgraph `outputs` need: nodes (topologically sorted), the graph
/// inputs they read, initializers cloned; trainable/buffer marks dropped.
/// Used by both exports; exposed for tests.
/// @throws ModelError when an output is neither produced nor an input
graph::Graph extractSubgraph(const graph::Graph& g, const std::vector<std::string>& outputs);

/// Total bytes of all initializers (what the model file stores as weights).
int64_t initializerBytes(const graph::Graph& g);

}  // namespace slim::compress
