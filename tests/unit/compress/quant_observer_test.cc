// FakeQuantAct observers (act-reference §4.4: moving average from 1.0,
// Paddle's range_abs_max window, dynamic abs_max), cross-rank MAX sync,
// straight-through gradient, and Pact (forward, hand-computed and
// finite-difference gradients, identity at inference), and the executor's
// link that lets a quantizer take its abs-max from the Pact before it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "tests/unit/compress/fusion_links.h"
#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/graph/executor.h"
#include "trainer/graph/fuse.h"

namespace slim::compress {
namespace {

// Observer harness: the op plus its state tensors, reused across batches.
struct Observer {
  std::unique_ptr<ops::Op> op;
  std::vector<Tensor> state;  // scale, then mode-specific buffers

  Observer(const std::string& mode, int64_t window = 3, float rate = 0.9f) {
    registerQuantOps(ops::OpRegistry::get());
    ops::Attrs a;
    a.set("bits", int64_t{8});
    a.set("mode", mode);
    a.set("moving_rate", rate);
    a.set("window_size", window);
    op = ops::OpRegistry::get().create(kFakeQuantActOp, a, "fqa");
    state.push_back(Tensor::fromVector({1}, {kActScaleInit}));
    if (mode == "moving_average_abs_max") {
      state.push_back(Tensor::fromVector({1}, {kEmaInit}));
      state.push_back(Tensor::fromVector({1}, {kEmaInit}));
    } else if (mode == "range_abs_max") {
      state.push_back(Tensor({window}));
      state.push_back(Tensor({1}));
    }
  }
  // One batch whose abs-max is `m` (values {m/2, -m, 0}); returns y.
  Tensor step(float m, bool training = true, rank_reduction::StateSync* sync = nullptr) {
    Tensor x = Tensor::fromVector({3}, {m / 2, -m, 0.f});
    return run(x, training, sync);
  }
  Tensor run(Tensor& x, bool training, rank_reduction::StateSync* sync = nullptr) {
    std::vector<Tensor*> in = {&x};
    for (auto& s : state) in.push_back(&s);
    Tensor y;
    ops::RunContext ctx;
    ctx.training = training;
    ctx.sync = sync;
    op->forward(in, {&y}, ctx);
    return y;
  }
  float scale() const { return state[0].f32()[0]; }
};

TEST(FakeQuantAct, MovingAverageFromOne) {
  Observer o("moving_average_abs_max");
  EXPECT_EQ(o.op->stateInputs(), (std::vector<int>{1, 2, 3}));
  // Paddle: state = 0.9 state + 1; accum = 0.9 accum + m; scale = accum / state.
  const float ms[3] = {2.f, 4.f, 1.f};
  const double want_state[3] = {1.9, 2.71, 3.439};
  const double want_accum[3] = {2.9, 6.61, 6.949};
  for (int t = 0; t < 3; ++t) {
    Tensor y = o.step(ms[t]);
    EXPECT_NEAR(o.state[1].f32()[0], want_state[t], 1e-5) << "batch " << t;
    EXPECT_NEAR(o.state[2].f32()[0], want_accum[t], 1e-5) << "batch " << t;
    EXPECT_NEAR(o.scale(), want_accum[t] / want_state[t], 1e-5) << "batch " << t;
    // The batch is quantized with the updated scale.
    const float x[3] = {ms[t] / 2, -ms[t], 0.f};
    float want[3];
    fakeQuantize(x, want, 3, o.scale(), 8);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(y.f32()[i], want[i]);
  }
  // Inference uses the stored scale and changes nothing.
  const float s = o.scale();
  Tensor x = Tensor::fromVector({2}, {100.f, 0.5f});
  Tensor y = o.run(x, false);
  EXPECT_EQ(o.scale(), s);
  EXPECT_NEAR(o.state[1].f32()[0], 3.439, 1e-5);
  EXPECT_FLOAT_EQ(y.f32()[0], 127.f * quantStep(s, 8));  // saturates at the stored scale
}

TEST(FakeQuantAct, RangeAbsMaxWindowWrapsAround) {
  Observer o("range_abs_max", /*window=*/3);
  // Batch maxima and the expected window max (Paddle writes slot it mod 3
  // with it = 1, 2, ...; the counter wraps from 6 back to 3).
  const float ms[9] = {5.f, 2.f, 3.f, 1.f, 0.5f, 4.f, 0.2f, 0.1f, 0.3f};
  const float want_scale[9] = {5.f, 5.f, 5.f, 3.f, 3.f, 4.f, 4.f, 4.f, 0.3f};
  const float want_counter[9] = {1, 2, 3, 4, 5, 3, 4, 5, 3};
  for (int t = 0; t < 9; ++t) {
    o.step(ms[t]);
    EXPECT_EQ(o.scale(), want_scale[t]) << "batch " << t;
    EXPECT_EQ(o.state[2].f32()[0], want_counter[t]) << "batch " << t;
    const int slot = static_cast<int>(want_counter[t]) % 3;
    EXPECT_EQ(o.state[1].f32()[slot], ms[t]) << "batch " << t;
  }
  // Window after batch 9: slots {0: 0.3, 1: 0.2, 2: 0.1}.
  EXPECT_EQ(o.state[1].f32()[0], 0.3f);
  EXPECT_EQ(o.state[1].f32()[1], 0.2f);
  EXPECT_EQ(o.state[1].f32()[2], 0.1f);
  // Inference: stored scale, no counter change.
  o.step(50.f, false);
  EXPECT_EQ(o.scale(), 0.3f);
  EXPECT_EQ(o.state[2].f32()[0], 3.f);
}

TEST(FakeQuantAct, RangeAbsMaxKeepsPaddleInitialScale) {
  // Paddle's scale starts at 0.001; a smaller first batch max does not lower it.
  Observer o("range_abs_max", 4);
  o.step(0.0005f);
  EXPECT_EQ(o.scale(), kActScaleInit);
  o.step(0.25f);
  EXPECT_EQ(o.scale(), 0.25f);
}

TEST(FakeQuantAct, AbsMaxIsDynamicAtInference) {
  Observer o("abs_max");
  EXPECT_EQ(o.op->stateInputs(), std::vector<int>{1});
  o.step(6.f);
  EXPECT_EQ(o.scale(), 6.f);
  // Inference: this batch's abs-max (127 -> step 1), buffer untouched.
  Tensor x = Tensor::fromVector({3}, {127.f, 2.5f, -3.5f});
  Tensor y = o.run(x, false);
  EXPECT_EQ(o.scale(), 6.f);
  EXPECT_EQ(y.f32()[0], 127.f);
  EXPECT_EQ(y.f32()[1], 2.f);
  EXPECT_EQ(y.f32()[2], -4.f);
  // All-zero batch: scale 0, zeros out, no NaN.
  Tensor z({4});
  Tensor yz = o.run(z, true);
  EXPECT_EQ(o.scale(), 0.f);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(yz.f32()[i], 0.f);
}

// A fake cross-rank sync: another rank saw a max of `other`.
struct FakeSync : rank_reduction::StateSync {
  float other;
  int calls = 0;
  explicit FakeSync(float o) : other(o) {}
  void allreduce(float* data, size_t n, rank_reduction::SyncOp op) override {
    ++calls;
    ASSERT_EQ(n, 1u);
    ASSERT_EQ(op, rank_reduction::SyncOp::kMax);
    data[0] = std::max(data[0], other);
  }
  void sumFixed(rank_reduction::Fixed*, size_t) override {
    ADD_FAILURE() << "observers only take maxima";
  }
  int size() const override { return 2; }
};

TEST(FakeQuantAct, SyncedMaxDrivesTheUpdate) {
  for (const char* mode : {"abs_max", "moving_average_abs_max", "range_abs_max"}) {
    Observer local(mode), synced(mode);
    FakeSync sync(10.f);
    local.step(2.f);
    Tensor y = synced.step(2.f, true, &sync);
    EXPECT_EQ(sync.calls, 1) << mode;
    Observer ref(mode);  // a single rank that saw the max of 10 itself
    ref.step(10.f);
    EXPECT_EQ(synced.scale(), ref.scale()) << mode;
    EXPECT_NE(synced.scale(), local.scale()) << mode;
    float want[3];
    const float x[3] = {1.f, -2.f, 0.f};
    fakeQuantize(x, want, 3, synced.scale(), 8);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(y.f32()[i], want[i]) << mode;
    synced.step(2.f, false, &sync);  // inference never synchronises
    EXPECT_EQ(sync.calls, 1) << mode;
  }
}

TEST(FakeQuantAct, StraightThroughGradient) {
  Observer o("moving_average_abs_max");
  Tensor x = test::randomTensor({2, 5}, 3, -4.f, 4.f);
  o.run(x, true);
  Tensor dy = test::randomTensor({2, 5}, 4), dx;
  std::vector<Tensor*> in = {&x, &o.state[0], &o.state[1], &o.state[2]};
  Tensor y;
  ops::RunContext ctx;
  o.op->backward(in, {&y}, {&dy}, {&dx, nullptr, nullptr, nullptr}, ctx);
  ASSERT_EQ(dx.shape(), x.shape());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(dx.f32()[i], dy.f32()[i]);
}

TEST(FakeQuantAct, BadStateAndAttrs) {
  Observer o("moving_average_abs_max");
  o.state.pop_back();
  EXPECT_THROW(o.step(1.f), Error);
  ops::Attrs a;
  a.set("mode", std::string("channel_wise_abs_max"));
  EXPECT_THROW(ops::OpRegistry::get().create(kFakeQuantActOp, a, "x"), ModelError);
  a.set("mode", std::string("moving_average_abs_max"));
  a.set("moving_rate", 1.f);
  EXPECT_THROW(ops::OpRegistry::get().create(kFakeQuantActOp, a, "x"), ModelError);
}

// Pact ---------------------------------------------------------------------

std::unique_ptr<ops::Op> pact() {
  registerQuantOps(ops::OpRegistry::get());
  return ops::OpRegistry::get().create(kPactOp, ops::Attrs{}, "pact");
}

TEST(Pact, ForwardAndHandGradients) {
  auto op = pact();
  Tensor x = Tensor::fromVector({5}, {-3.f, -1.f, 0.5f, 2.f, 3.f});
  Tensor alpha = Tensor::fromVector({1}, {2.f});
  Tensor y, dx, da;
  ops::RunContext ctx;
  ctx.training = true;
  op->forward({&x, &alpha}, {&y}, ctx);
  const std::vector<float> want = {-2.f, -1.f, 0.5f, 2.f, 2.f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(y.f32()[i], want[i]);
  Tensor g = Tensor::fromVector({5}, {1.f, 2.f, 3.f, 4.f, 5.f});
  op->backward({&x, &alpha}, {&y}, {&g}, {&dx, &da}, ctx);
  // dx passes inside [-2, 2] (boundary included); dalpha = 5 - 1.
  const std::vector<float> want_dx = {0.f, 2.f, 3.f, 4.f, 0.f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(dx.f32()[i], want_dx[i]);
  EXPECT_EQ(da.f32()[0], 4.f);
}

TEST(Pact, FiniteDifferenceAwayFromKinks) {
  registerQuantOps(ops::OpRegistry::get());
  Tensor x = test::randomTensor({3, 8}, 11, -3.f, 3.f);
  const float alpha = 1.3f;
  for (int64_t i = 0; i < x.numel(); ++i) {  // keep |x| at least 0.1 from alpha
    float& v = x.f32()[i];
    if (std::fabs(std::fabs(v) - alpha) < 0.1f) v += v > 0 ? 0.25f : -0.25f;
  }
  test::gradCheck(kPactOp, ops::Attrs{}, {x, Tensor::fromVector({1}, {alpha})}, 1);
}

TEST(Pact, IdentityAtInference) {
  auto op = pact();
  Tensor x = Tensor::fromVector({3}, {-30.f, 1.f, 30.f});
  Tensor alpha = Tensor::fromVector({1}, {2.f});
  Tensor y, dx, da;
  ops::RunContext ctx;  // training = false
  op->forward({&x, &alpha}, {&y}, ctx);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(y.f32()[i], x.f32()[i]);
  Tensor g = Tensor::fromVector({3}, {1.f, 1.f, 1.f});
  op->backward({&x, &alpha}, {&y}, {&g}, {&dx, &da}, ctx);
  EXPECT_EQ(dx.f32()[0], 1.f);
  EXPECT_EQ(da.f32()[0], 0.f);
}

// Pact publishes max |y| of each training forward (Op::publishOutputAbsMax):
// the value absMax(y) gives, NaN when alpha is NaN, not valid after an
// inference forward; a FakeQuantAct reading the link gets the scales and
// outputs of one that computes the maximum itself, and does use the link.
TEST(Pact, PublishesTheAbsMaxItsQuantizerReads) {
  auto op = pact();
  ops::AbsMaxLink link;
  ASSERT_TRUE(op->publishOutputAbsMax(&link));
  Observer linked("range_abs_max"), own("range_abs_max");
  ASSERT_TRUE(linked.op->readInputAbsMax(&link));
  ops::RunContext train;
  train.training = true;
  for (int step = 0; step < 3; ++step) {
    // 70001 values: several 4096 blocks per thread and a ragged tail.
    Tensor x = test::randomTensor({70001}, 30 + step, -4.f, 4.f - step);
    Tensor alpha = Tensor::fromVector({1}, {step == 1 ? 9.f : 2.5f}), y;
    op->forward({&x, &alpha}, {&y}, train);
    ASSERT_TRUE(link.valid);
    EXPECT_EQ(link.value, absMax(y.f32(), y.numel())) << step;
    Tensor a = linked.run(y, true), b = own.run(y, true);
    EXPECT_EQ(linked.scale(), own.scale()) << step;
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << step;
  }
  link.value = 1000.f;  // used when valid: the observer's window sees it
  Tensor small = Tensor::fromVector({2}, {0.5f, -1.f});
  linked.run(small, true);
  EXPECT_EQ(linked.scale(), 1000.f);
  Tensor x = Tensor::fromVector({3}, {-3.f, 1.f, 3.f}), y;
  Tensor nan_alpha = Tensor::fromVector({1}, {std::nanf("")});
  op->forward({&x, &nan_alpha}, {&y}, train);
  EXPECT_TRUE(link.valid && std::isnan(link.value));
  ops::RunContext infer;
  op->forward({&x, &nan_alpha}, {&y}, infer);
  EXPECT_FALSE(link.valid);
}

// The executor links each Pact -> FakeQuantAct pair (graph/fuse.h), and
// nothing else: a FakeQuantAct after a Relu computes its own maximum.
TEST(Pact, ExecutorLinksPactToItsQuantizer) {
  registerQuantOps(ops::OpRegistry::get());
  auto node = [](std::string op, std::vector<std::string> in, std::string out) {
    return graph::Node{out, std::move(op), std::move(in), {out}, {}};
  };
  graph::Graph g;
  g.nodes = {node(kPactOp, {"x", "alpha"}, "p"),
             node(kFakeQuantActOp, {"p", "s"}, "q"),
             node("Relu", {"q"}, "r"),
             node(kFakeQuantActOp, {"r", "s2"}, "q2")};
  std::vector<std::unique_ptr<ops::Op>> ops;
  ops::Attrs abs_max;
  abs_max.set("mode", std::string("abs_max"));
  ops.push_back(ops::OpRegistry::get().create(kPactOp, {}, "p"));
  ops.push_back(ops::OpRegistry::get().create(kFakeQuantActOp, abs_max, "q"));
  ops.push_back(ops::OpRegistry::get().create("Relu", {}, "r"));
  ops.push_back(ops::OpRegistry::get().create(kFakeQuantActOp, abs_max, "q2"));
  auto links = graph::detail::linkAbsMax(g, ops);
  ASSERT_EQ(links.size(), 1u);
  Tensor x = Tensor::fromVector({4}, {-5.f, 1.f, 2.f, 0.5f});
  Tensor alpha = Tensor::fromVector({1}, {3.f}), p;
  ops::RunContext train;
  train.training = true;
  ops[0]->forward({&x, &alpha}, {&p}, train);
  EXPECT_TRUE(links[0]->valid);
  EXPECT_EQ(links[0]->value, 3.f);
  std::vector<std::unique_ptr<ops::ClipLink>> clips;
  EXPECT_EQ(graph::detail::handOverClips(g, ops, clips), std::vector<size_t>{0});
  ASSERT_EQ(clips.size(), 1u);
}

// PACT leaving its clip to the quantizer (graph/fuse.h handOverClips): PACT
// writes nothing (its output shares x) and the quantizer clips as it reads;
// scales and outputs are those of the unfused pair, NaN inputs included,
// and at inference nothing is clipped.
TEST(Pact, HandsItsClipToTheQuantizer) {
  auto fused = pact(), plain = pact();
  ops::AbsMaxLink fused_max, plain_max;
  ops::ClipLink clip;
  Observer fq("range_abs_max"), own("range_abs_max");
  ASSERT_TRUE(fq.op->readInputClip(&clip) == false);  // not without the abs-max link
  ASSERT_TRUE(fused->handOutputClip(&clip) == false);
  ASSERT_TRUE(fused->publishOutputAbsMax(&fused_max) && fq.op->readInputAbsMax(&fused_max));
  ASSERT_TRUE(plain->publishOutputAbsMax(&plain_max) && own.op->readInputAbsMax(&plain_max));
  ASSERT_TRUE(fq.op->readInputClip(&clip) && fused->handOutputClip(&clip));
  for (int step = 0; step < 4; ++step) {
    ops::RunContext ctx;
    ctx.training = step != 3;
    Tensor x = test::randomTensor({70001}, 60 + step, -4.f, 4.f);
    x.f32()[17] = std::nanf("");
    Tensor alpha = Tensor::fromVector({1}, {step == 1 ? 9.f : 2.5f}), yf, yp;
    fused->forward({&x, &alpha}, {&yf}, ctx);
    plain->forward({&x, &alpha}, {&yp}, ctx);
    EXPECT_TRUE(yf.sameStorage(x)) << step;
    EXPECT_EQ(clip.valid, ctx.training) << step;
    Tensor a = fq.run(yf, ctx.training), b = own.run(yp, ctx.training);
    EXPECT_EQ(fq.scale(), own.scale()) << step;
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << step;
  }
}

// y = x * w (w one trainable value); records whether backward was asked for
// x's gradient.
bool g_dx_requested = false;
class ScaleRecordingDx : public ops::Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    out[0]->resize(in[0]->shape());
    for (int64_t i = 0; i < in[0]->numel(); ++i)
      out[0]->f32()[i] = in[0]->f32()[i] * in[1]->f32()[0];
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    g_dx_requested = din[0] != nullptr;
    const float* g = dout[0]->f32();
    if (din[0]) {
      din[0]->resize(in[0]->shape());
      for (int64_t i = 0; i < in[0]->numel(); ++i) din[0]->f32()[i] = g[i] * in[1]->f32()[0];
    }
    if (din[1]) {
      din[1]->resize({1});
      float sum = 0.f;
      for (int64_t i = 0; i < in[0]->numel(); ++i) sum += g[i] * in[0]->f32()[i];
      din[1]->f32()[0] = sum;
    }
  }
};

void registerScaleRecordingDx() {
  ops::OpRegistry::get().add("ScaleRecordingDx", [](const ops::Attrs&) {
    return std::make_unique<ScaleRecordingDx>();
  });
}

// x -> Pact -> FakeQuantAct -> x * w: when the PACT clipped nothing, alpha's
// gradient is 0 whatever reaches it, so the executor does not ask the op
// before it for its input's gradient (Op::outputGradientUnused); when it
// clipped, it does. Gradients equal an executor without that pruning.
TEST(Pact, UnclippedInputGradientIsSkipped) {
  registerQuantOps(ops::OpRegistry::get());
  registerScaleRecordingDx();
  auto build = [] {
    graph::Graph g;
    g.inputs = {{"x", {6}, DType::kF32}};
    g.outputs = {{"y", {6}, DType::kF32}};
    g.addInitializer("alpha", Tensor::fromVector({1}, {3.f}), true);
    g.addInitializer("w", Tensor::fromVector({1}, {0.75f}), true);
    g.addInitializer("s", Tensor::fromVector({1}, {0.f}), false, true);
    ops::Attrs abs_max;
    abs_max.set("mode", std::string("abs_max"));
    g.nodes = {graph::Node{"p", kPactOp, {"x", "alpha"}, {"p"}, {}},
               graph::Node{"q", kFakeQuantActOp, {"p", "s"}, {"q"}, abs_max},
               graph::Node{"y", "ScaleRecordingDx", {"q", "w"}, {"y"}, {}}};
    return g;
  };
  graph::Graph gf = build(), gp = build();
  graph::Executor pruned(gf), plain(gp, false);
  ops::RunContext ctx;
  ctx.training = true;
  for (float big : {2.5f, 5.f, 1.f}) {  // 5 is clipped
    const std::map<std::string, Tensor> feed = {
        {"x", Tensor::fromVector({6}, {0.5f, -1.f, big, 2.f, -2.9f, 0.f})}};
    Tensor seed = Tensor::fromVector({6}, {1.f, -2.f, 0.5f, 3.f, 1.f, -1.f});
    pruned.forward(feed, ctx);
    pruned.backward({{"y", seed}}, ctx);
    EXPECT_EQ(g_dx_requested, big > 3.f) << big;
    plain.forward(feed, ctx);
    plain.backward({{"y", seed}}, ctx);
    EXPECT_TRUE(g_dx_requested) << big;
    for (const char* p : {"alpha", "w"}) {
      const Tensor &a = pruned.grad(p), &b = plain.grad(p);
      ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << p << " " << big;
    }
    EXPECT_EQ(std::signbit(pruned.grad("alpha").f32()[0]), false);
    EXPECT_EQ(pruned.grad("alpha").f32()[0] != 0.f, big > 3.f) << big;
  }
}

// BatchNormalization (training) -> Relu -> Pact -> FakeQuantAct -> x * w: the
// PACT's pass over its input (clipped abs-max, any clipped) runs in the
// norm's output loop (graph/fuse.h linkRowVisits, through the fused Relu);
// outputs, scales and every gradient equal an executor without fusions, in
// steps that clip and steps that do not.
TEST(Pact, NormVisitsThePactRows) {
  registerQuantOps(ops::OpRegistry::get());
  registerScaleRecordingDx();
  auto build = [] {
    graph::Graph g;
    g.inputs = {{"x", {4, 3, 5, 5}, DType::kF32}};
    g.outputs = {{"y", {4, 3, 5, 5}, DType::kF32}};
    g.addInitializer("bn.s", Tensor::fromVector({3}, {1.5f, 0.5f, 2.f}), true);
    g.addInitializer("bn.b", Tensor::fromVector({3}, {0.1f, -0.2f, 0.3f}), true);
    g.addInitializer("bn.m", Tensor::fromVector({3}, {0.f, 0.f, 0.f}), false, true);
    g.addInitializer("bn.v", Tensor::fromVector({3}, {1.f, 1.f, 1.f}), false, true);
    g.addInitializer("alpha", Tensor::fromVector({1}, {2.f}), true);
    g.addInitializer("w", Tensor::fromVector({1}, {0.75f}), true);
    g.addInitializer("s", Tensor::fromVector({1}, {0.f}), false, true);
    ops::Attrs abs_max;
    abs_max.set("mode", std::string("abs_max"));
    g.nodes = {graph::Node{"bn", "BatchNormalization", {"x", "bn.s", "bn.b", "bn.m", "bn.v"},
                           {"bn"}, {}},
               graph::Node{"r", "Relu", {"bn"}, {"r"}, {}},
               graph::Node{"p", kPactOp, {"r", "alpha"}, {"p"}, {}},
               graph::Node{"q", kFakeQuantActOp, {"p", "s"}, {"q"}, abs_max},
               graph::Node{"y", "ScaleRecordingDx", {"q", "w"}, {"y"}, {}}};
    return g;
  };
  graph::Graph gf = build(), gp = build();
  graph::Executor fused(gf), plain(gp, false);
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 4; ++step) {
    gf.initializers.at("alpha").f32()[0] = gp.initializers.at("alpha").f32()[0] =
        step % 2 ? 1.f : 50.f;  // 50: nothing clipped
    const std::map<std::string, Tensor> feed = {
        {"x", test::randomTensor({4, 3, 5, 5}, 80 + step, -3.f, 3.f)}};
    Tensor seed = test::randomTensor({4, 3, 5, 5}, 90 + step, -1.f, 1.f);
    fused.forward(feed, ctx);
    plain.forward(feed, ctx);
    const Tensor &a = fused.value("y"), &b = plain.value("y");
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << step;
    EXPECT_EQ(gf.initializers.at("s").f32()[0], gp.initializers.at("s").f32()[0]) << step;
    fused.backward({{"y", seed}}, ctx);
    plain.backward({{"y", seed}}, ctx);
    for (const auto& p : gf.trainable) {
      const Tensor &ga = fused.grad(p), &gb = plain.grad(p);
      ASSERT_EQ(std::memcmp(ga.raw(), gb.raw(), ga.bytes()), 0) << p << " " << step;
    }
  }
  // The links themselves: the Pact reads its rows from the norm.
  graph::Graph g = build();
  const auto [acts, rows] = test::fusedActivationsAndRowVisits(g);
  EXPECT_EQ(acts, 1u);
  EXPECT_EQ(rows, 1u);
}

}  // namespace
}  // namespace slim::compress
