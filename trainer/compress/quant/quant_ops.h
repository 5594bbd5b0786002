// slimtrain's own fake-quantization ops (no ONNX counterpart), registered
// into ops::OpRegistry by registerQuantOps(). Numerics: numerics.h. All
// observer state lives in float32 tensors passed as state inputs, so it is a
// graph buffer (checkpointed, shared by name between training and eval).
//
//   FakeQuantWeight  inputs [w, scale]            attrs bits, mode, axis
//   FakeQuantAct     inputs [x, scale, state...]  attrs bits, mode, moving_rate, window_size
//   Pact             inputs [x, alpha]            (no attrs)
//   FakeQuantBias    inputs [b, w, act_scale]     attrs activation_bits, bits, mode, axis
#pragma once

#include "trainer/ops/op.h"

namespace slim::compress {

/// Op type names.
inline constexpr const char* kFakeQuantWeightOp = "FakeQuantWeight";
inline constexpr const char* kFakeQuantActOp = "FakeQuantAct";
inline constexpr const char* kPactOp = "Pact";
inline constexpr const char* kFakeQuantBiasOp = "FakeQuantBias";

/// PACT constants (act-reference §4.6). The op only clips; the trainer applies
/// the L2 decay on alpha and updates alpha with its own Momentum optimizer
/// (constant LR, independent of TrainConfig's optimizer and schedule).
inline constexpr float kPactInitAlpha = 20.0f;
inline constexpr double kPactWeightDecay = 1e-4;   ///< L2 coefficient on alpha
inline constexpr double kPactLearningRate = 1e-4;  ///< Momentum learning rate
inline constexpr double kPactMomentum = 0.9;       ///< Momentum coefficient

/// Initial value of every activation scale buffer (Paddle's scale var init).
inline constexpr float kActScaleInit = 0.001f;
/// Initial value of the moving-average `state` and `accum` buffers (ACT: 1.0).
inline constexpr float kEmaInit = 1.0f;

/// Registers FakeQuantWeight, FakeQuantAct, Pact and FakeQuantBias (idempotent; concurrent
/// calls are safe, but do not call it while other threads create ops).
///
/// FakeQuantWeight: y = fake-quantized w, recomputing the scale(s) from w on
///   every forward (training and inference) and writing them into input 1.
///   mode "abs_max": scale shape [1]; "channel_wise_abs_max": scale [w.dim(axis)],
///   one per slice along `axis` (negative counts from the end). Backward:
///   straight-through, dw = dy exactly.
/// FakeQuantAct: y = fake-quantized x. Training: m = max|x| of this batch,
///   allreduced with SyncOp::kMax when ctx.sync is set, then:
///   - mode "abs_max", inputs [x, scale]: scale = m (at inference the
///     local batch abs-max is used and the buffer is left untouched);
///   - "moving_average_abs_max", inputs [x, scale, state, accum] (state and
///     accum start at 1.0): state = r*state + 1; accum = r*accum + m;
///     scale = accum / state, r = attr moving_rate (default 0.9);
///   - "range_abs_max", inputs [x, scale, window[W], counter[1]] (Paddle's
///     FindRangeAbsMax, W = attr window_size): counter += 1; it = counter;
///     idx = it mod W; removed = window[idx]; window[idx] = m; scale = m if
///     m > scale, else max(window[0 : min(it, W)]) if |removed - scale| <
///     1e-6, else unchanged. The counter is a float holding an integer kept
///     in [1, 2W) (W is subtracted once it reaches 2W; only it mod W and
///     min(it, W) matter), so it is exact for any W < 2^23.
///   Inference (ctx.training false, modes other than abs_max): the stored
///   scale is used and no state changes. Backward: straight-through.
/// Pact: y = clip(x, -alpha, alpha) in training; dx = dy where -alpha <= x
///   <= alpha, else 0; dalpha = sum(dy | x > alpha) - sum(dy | x < -alpha).
///   At inference Pact is the identity (ACT builds its eval/export program
///   without PACT), with backward passing dy through.
/// FakeQuantBias: y[c] = quantizeBias(b[c], st_c) * st_c with st_c =
///   biasStep(exportActivationStep(act_scale, activation_bits), step_w[c]),
///   step_w the steps FakeQuantWeight computes from w (attrs bits, mode,
///   axis as its own); the int32 bias of the QDQ export, in training and at
///   inference alike (act_scale is read as stored when the op runs).
///   Backward: straight-through to b; w and act_scale get no gradient.
/// @param r the registry (usually ops::OpRegistry::get())
void registerQuantOps(ops::OpRegistry& r);

namespace detail {
/// Registers Pact only (part of registerQuantOps; defined in pact_op.cc).
void registerPactOp(ops::OpRegistry& r);
/// Registers FakeQuantBias only (part of registerQuantOps; bias_quant_op.cc).
void registerBiasQuantOp(ops::OpRegistry& r);

/// A weight viewed as (outer, channels, inner) around its quantization axis
/// (negative counts from the end), as FakeQuantWeight and FakeQuantBias see
/// it; an axis out of range is an internal error naming `label`.
struct ChannelView {
  int axis = 0;
  int64_t outer = 1, channels = 1, inner = 1;
};
ChannelView channelView(const Tensor& w, int64_t axis, const std::string& label);
}  // namespace detail

}  // namespace slim::compress
