// The QAT insertion pass (act-reference §4.1, SEMANTICS.md §2): rewrites a
// Graph so every selected Conv/Gemm/MatMul reads a fake-quantized weight and
// a (PACT-clipped, then) fake-quantized input activation. State (scales,
// observer state) becomes graph buffers, PACT alphas trainable parameters.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/graph/graph.h"

namespace slim::compress {

struct QatOptions {
  /// Insert Pact when QuantAware.use_pact is set. False builds the graph the
  /// way ACT builds its eval/test program (no PACT at all).
  bool allow_pact = true;
  /// Nodes named with this prefix, or reading a tensor named with it, are the
  /// teacher's and are never quantized (ACT marks them skip_quant).
  std::string teacher_prefix = "teacher_";
  /// Nodes never quantized: the training objective's (distillation and task
  /// losses), whose Adds elementwise_add would otherwise select.
  std::set<std::string> objective_nodes;
};

/// One quantized op.
struct QuantizedNode {
  std::string node;        ///< node name
  std::string kind;        ///< Paddle op kind: conv2d | depthwise_conv2d |
                           ///< conv2d_transpose | mul (Gemm) | matmul (MatMul,
                           ///< with a weight or of two activations) |
                           ///< elementwise_add (Add) | pool2d (ONNX pooling ops)
  std::string weight;      ///< weight parameter it reads (through the quantizer);
                           ///< "" for the activation-only kinds
  std::string activation;  ///< activation tensor it reads (through the quantizer)
  std::string activation2; ///< elementwise_add, matmul of two activations:
                           ///< the second input's tensor
  std::string bias;        ///< bias parameter it reads through FakeQuantBias
                           ///< (the export's int32 bias); "" when none
};

/// One weight quantizer (FakeQuantWeight node).
struct WeightQuant {
  std::string param;      ///< the trainable weight (unchanged, still trained)
  std::string quantized;  ///< the fake-quantized tensor the op now reads
  std::string scale;      ///< scale buffer: [C] per channel or [1]
  std::string mode;       ///< abs_max | channel_wise_abs_max
  int axis = -1;          ///< channel axis (channel_wise_abs_max), -1 for abs_max
  std::string node;       ///< the FakeQuantWeight node name
  int bits = 8;           ///< weight_bits, or signed_input_weight_bits where the
                          ///< op's input can be negative
};

/// One activation quantizer (optional Pact node + FakeQuantAct node).
struct ActQuant {
  std::string tensor;      ///< the original activation tensor
  std::string quantized;   ///< tensor the quantized ops now read
  std::string scale;       ///< scale buffer [1]
  std::vector<std::string> state;  ///< observer buffers: moving average
                           ///< {state, accum}; range_abs_max {window, counter}
  std::string mode;        ///< abs_max | moving_average_abs_max | range_abs_max
  std::string pact_alpha;  ///< "" without PACT
  std::string node;        ///< the FakeQuantAct node name
};

struct QatInfo {
  std::vector<QuantizedNode> nodes;   ///< in graph order
  std::vector<WeightQuant> weights;
  std::vector<ActQuant> activations;  ///< one per distinct input tensor
  std::vector<std::string> pact_alphas;  ///< trainable, see kPact* constants
  /// Candidate nodes of a selected kind that were left float, with the reason.
  std::vector<std::pair<std::string, std::string>> skipped;
  int weight_bits = 8;
  int activation_bits = 8;

  /// Names of the quantized nodes, in graph order.
  std::vector<std::string> nodeNames() const;
  /// The quantizer of weight `param`, or nullptr.
  const WeightQuant* findWeight(const std::string& param) const;
  /// The quantizer of activation tensor `tensor`, or nullptr.
  const ActQuant* findActivation(const std::string& tensor) const;
  /// Every buffer the pass created (scales and observer state).
  std::vector<std::string> bufferNames() const;
};

/// Inserts fake quantization for the ops selected by config::quantTargets(q):
/// Conv (group 1 or other non-depthwise grouping) -> conv2d; Conv with one
/// input channel per group, group > 1 and out channels a multiple of group
/// -> depthwise_conv2d; ConvTranspose -> conv2d_transpose; Gemm -> mul;
/// MatMul whose second input is an initializer -> matmul. Only nodes whose
/// weight (input 1) is an initializer are quantized, except a MatMul of two
/// activations (attention's Q.K^T, attn.V) -> matmul as an activation-only
/// op where QuantTargets::matmul_act (matmul, matmul_v2, MatMul; not mul):
/// both inputs get an EMA quantizer and no PACT, as Paddle's quant-dequant
/// pass quantizes matmul / matmul_v2 (act-reference §4.1);
/// QuantizedNode::weight is "" and activation2 names the second input.
/// Add of two activations
/// -> elementwise_add, an activation-only op (act-reference §4.1): both
/// inputs get a quantizer, moving_average_abs_max without PACT as Paddle's
/// quant-dequant pass inserts; an Add with a constant input is skipped.
/// MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> pool2d, also
/// activation-only: its input gets such a quantizer. A node is skipped when
/// its name contains any not_quant_pattern substring (slimtrain matches the
/// node name: ONNX has no Paddle name scope) or it belongs to the teacher.
///
/// A conv2d / depthwise_conv2d / mul (Gemm with alpha = beta = 1) whose
/// bias is a 1-D initializer of one value per output channel reads it
/// through a FakeQuantBias node ("<b>.quantized.dequantized", node
/// "<b>.fake_quant"): the int32 bias the QDQ export stores, simulated.
/// These nodes read initializers only and are placed first in the node
/// list, so in training they round on the activation scales stored at the
/// start of the iteration (at inference: the stored scales, as exported).
///
/// Weight axis for channel_wise_abs_max: 0 for Conv; 1 for ConvTranspose;
/// Gemm: 0 with transB=1 ([N, K]), 1 otherwise ([K, N]); MatMul: the last
/// axis (per tensor for a 1-D weight). Names: "<w>.quantized.dequantized",
/// "<w>.quant_scale"; activations "<x>.quantized.dequantized",
/// "<x>.act_scale", "<x>.act_state"/"<x>.act_accum" or
/// "<x>.act_window"/"<x>.act_counter", PACT "<x>.pact" with alpha
/// "<x>_tmp_input_pact" (ACT's name, initial 20.0). Activations read by
/// several quantized ops share one quantizer, the one the first of them in
/// graph order would insert (Paddle's two passes would give a tensor read by
/// a conv and a residual Add two quantizers; one keeps it one integer tensor,
/// which integer runtimes need); weights share too (per axis). Weight
/// scales start at the weights' current abs-max, activation scales at 0.001.
///
/// @throws ConfigError for weight_quantize_type other than abs_max /
///   channel_wise_abs_max (ACT accepts range_abs_max / moving_average_abs_max
///   for weights; slimtrain recomputes weight scales every step and rejects
///   them), activation_quantize_type channel_wise_abs_max or unknown, or bits
///   outside 2..16; ModelError when the graph is inconsistent.
/// Registers the quant ops into ops::OpRegistry::get().
/// @return what was quantized (graph is left topologically sorted)
QatInfo insertQat(graph::Graph& g, const config::QuantAware& q, const QatOptions& opts = {});

/// One line per quantized op ("conv2d conv1: weight conv1.w
/// channel_wise_abs_max axis 0 int8, input x pact+moving_average_abs_max
/// int8"), then one line per skipped candidate; no trailing newline.
std::string describeQat(const QatInfo& info);

}  // namespace slim::compress
