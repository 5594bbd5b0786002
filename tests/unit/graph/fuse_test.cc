// Executor activation fusion (fuse.h): a Conv / BatchNormalization followed by
// its only reader, a Relu or a Clip with constant bounds, runs as one pass;
// outputs and every parameter gradient keep their bits, the activation's
// output shares the producer's buffer, and a tensor with a second reader
// (or one the executor frees after use) is left alone. In backward, the op
// reading an activation's output applies its mask instead.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/graph/executor.h"
#include "trainer/graph/fuse.h"

namespace slim::graph {
namespace {

Node node(std::string name, std::string op, std::vector<std::string> in,
          std::vector<std::string> out) {
  return Node{std::move(name), std::move(op), std::move(in), std::move(out), {}};
}

// in -> GlobalAveragePool -> Flatten -> Gemm (transB, trainable fc.w) -> logits.
void addHead(Graph& g, const std::string& in, Tensor fc_w) {
  g.nodes.push_back(node("gap", "GlobalAveragePool", {in}, {"gap"}));
  Node fl = node("flat", "Flatten", {"gap"}, {"flat"});
  fl.attrs.set("axis", int64_t{1});
  g.nodes.push_back(fl);
  g.addInitializer("fc.w", std::move(fc_w), true);
  Node fc = node("fc", "Gemm", {"flat", "fc.w"}, {"logits"});
  fc.attrs.set("transB", int64_t{1});
  g.nodes.push_back(fc);
}

// x(4,3,6,6) -conv1-> bn -> relu -dw(3x3, s2, bias)-> Clip(0, 0.5) -pw->
// relu6 (Clip attrs, opset < 11) ... and a Relu on pw's output whose input is
// also read by an Add (not fusable) -> gap -> fc.
Graph build() {
  Graph g;
  g.inputs = {{"x", {-1, 3, 6, 6}, DType::kF32}};
  g.outputs = {{"logits", {-1, 5}, DType::kF32}};
  uint64_t seed = 3;
  auto param = [&](const std::string& n, Shape s, float lo = -0.6f, float hi = 0.6f) {
    g.addInitializer(n, test::randomTensor(std::move(s), seed++, lo, hi), true);
  };
  param("c1.w", {8, 3, 3, 3});
  Node c1 = node("c1", "Conv", {"x", "c1.w"}, {"c1"});
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes.push_back(c1);
  param("bn.s", {8}, 0.5f, 1.5f);
  param("bn.b", {8});
  g.addInitializer("bn.m", Tensor::fromVector({8}, std::vector<float>(8, 0.f)), false, true);
  g.addInitializer("bn.v", Tensor::fromVector({8}, std::vector<float>(8, 1.f)), false, true);
  g.nodes.push_back(node("bn", "BatchNormalization", {"c1", "bn.s", "bn.b", "bn.m", "bn.v"},
                         {"bn"}));
  g.nodes.push_back(node("r1", "Relu", {"bn"}, {"r1"}));
  param("dw.w", {8, 1, 3, 3});
  param("dw.b", {8});
  Node dw = node("dw", "Conv", {"r1", "dw.w", "dw.b"}, {"dw"});
  dw.attrs.set("group", int64_t{8});
  dw.attrs.set("strides", std::vector<int64_t>{2, 2});
  dw.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes.push_back(dw);
  g.addInitializer("lo", Tensor::fromVector({}, {0.f}));
  g.addInitializer("hi", Tensor::fromVector({}, {0.5f}));
  g.nodes.push_back(node("clip", "Clip", {"dw", "lo", "hi"}, {"clip"}));
  param("pw.w", {8, 8, 1, 1});
  g.nodes.push_back(node("pw", "Conv", {"clip", "pw.w"}, {"pw"}));
  Node r6 = node("r6", "Clip", {"pw"}, {"r6"});
  r6.attrs.set("min", 0.f);
  r6.attrs.set("max", 6.f);
  g.nodes.push_back(r6);
  param("pw2.w", {8, 8, 1, 1});
  g.nodes.push_back(node("pw2", "Conv", {"r6", "pw2.w"}, {"pw2"}));
  g.nodes.push_back(node("r2", "Relu", {"pw2"}, {"r2"}));
  g.nodes.push_back(node("add", "Add", {"r2", "pw2"}, {"add"}));  // pw2 has two readers
  addHead(g, "add", test::randomTensor({5, 8}, seed++, -0.6f, 0.6f));
  return g;
}

std::map<std::string, Tensor> feed(uint64_t seed) {
  return {{"x", test::randomTensor({4, 3, 6, 6}, seed, -2.f, 2.f)}};
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

TEST(FuseActivations, SameBitsSharedBuffersSecondReaderLeftAlone) {
  Graph gf = build(), gu = build();
  Executor fused(gf), plain(gu, false);
  ops::RunContext ctx;
  ctx.training = true;
  const void* bn_buffer = nullptr;  // the producer reuses its buffer each step
  for (int step = 0; step < 2; ++step) {
    const auto f = feed(50 + step);
    fused.forward(f, ctx);
    plain.forward(f, ctx);
    ASSERT_TRUE(sameBits(fused.value("logits"), plain.value("logits"))) << "step " << step;
    // Fused pairs share one buffer; pw2 (two readers) keeps its raw values.
    for (const auto& [y, z] : std::vector<std::pair<std::string, std::string>>{
             {"bn", "r1"}, {"dw", "clip"}, {"pw", "r6"}}) {
      EXPECT_TRUE(fused.value(y).sameStorage(fused.value(z))) << y;
      EXPECT_TRUE(sameBits(fused.value(z), plain.value(z))) << z;
    }
    EXPECT_FALSE(fused.value("pw2").sameStorage(fused.value("r2")));
    EXPECT_TRUE(sameBits(fused.value("pw2"), plain.value("pw2")));
    if (bn_buffer) {
      EXPECT_EQ(bn_buffer, fused.value("bn").raw());
    }
    bn_buffer = fused.value("bn").raw();
    Tensor seed({4, 5});
    seed.fill(0.25f);
    seed.f32()[3] = -1.f;
    fused.backward({{"logits", seed}}, ctx);
    plain.backward({{"logits", seed}}, ctx);
    for (const auto& p : gf.trainable)
      ASSERT_TRUE(sameBits(fused.grad(p), plain.grad(p))) << p << " step " << step;
  }
}

// Backward: a Conv reading a Relu/Clip output applies the activation's mask
// to the gradient it writes and the activation's backward is skipped (same
// bits as above). Kept intermediate gradients are the unmasked ones: with
// keepIntermediateGrads the activations run their own backward again.
TEST(FuseActivations, MaskedGradientsKeptGradientsUnmasked) {
  Graph gf = build(), gu = build();
  Executor fused(gf), plain(gu, false);
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 3; ++step) {
    const bool keep = step == 1;
    fused.keepIntermediateGrads(keep);
    plain.keepIntermediateGrads(keep);
    const auto f = feed(90 + step);
    fused.forward(f, ctx);
    plain.forward(f, ctx);
    Tensor seed({4, 5});
    seed.fill(-0.5f);
    seed.f32()[7] = 2.f;
    fused.backward({{"logits", seed}}, ctx);
    plain.backward({{"logits", seed}}, ctx);
    for (const auto& p : gf.trainable)
      ASSERT_TRUE(sameBits(fused.grad(p), plain.grad(p))) << p << " step " << step;
    if (!keep) continue;
    for (const char* t : {"r1", "bn", "clip", "dw", "r6", "pw"}) {
      ASSERT_TRUE(fused.gradOf(t).defined()) << t;
      EXPECT_TRUE(sameBits(fused.gradOf(t), plain.gradOf(t))) << t;
    }
  }
}

// A frozen graph whose activations the executor frees (a teacher): a fused
// pair's buffer goes back to the pool once, when the activation's output is
// used up; same bits, and the pool holds no more than without fusion.
TEST(FuseActivations, FreedTensorsFuseToo) {
  Graph gf = build(), gu = build();
  gf.trainable.clear();
  gu.trainable.clear();
  Executor fused(gf), plain(gu, false);
  fused.releaseForwardValues(true);
  plain.releaseForwardValues(true);
  ops::RunContext ctx;
  for (int step = 0; step < 3; ++step) {
    const auto f = feed(70 + step);
    fused.forward(f, ctx);
    plain.forward(f, ctx);
    ASSERT_TRUE(sameBits(fused.value("logits"), plain.value("logits"))) << "step " << step;
    EXPECT_LE(fused.pooledBytes(), plain.pooledBytes()) << "step " << step;
    EXPECT_FALSE(fused.hasValue("bn"));  // freed with r1's buffer
  }
}

// build() with a frozen BatchNormalization (slim_frozen: running statistics
// in every mode, as in a merged teacher) and non-trivial statistics.
Graph buildFrozenNorm(bool trainable) {
  Graph g = build();
  for (Node& nd : g.nodes)
    if (nd.name == "bn") nd.attrs.set("slim_frozen", int64_t{1});
  g.initializers["bn.m"] = test::randomTensor({8}, 41, -0.5f, 0.5f);
  g.initializers["bn.v"] = test::randomTensor({8}, 42, 0.5f, 2.f);
  if (!trainable) g.trainable.clear();
  return g;
}

// Outside backward, a frozen BatchNormalization runs inside the Conv that
// writes its input (fuse.h fuseFrozenNorms), with the Relu fused into it:
// same bits in training and inference mode, one buffer for c1, bn and r1,
// and freed tensors still go back to the pool. In backward it is left alone.
TEST(FuseActivations, FrozenNormRunsInsideTheConv) {
  for (bool release : {false, true}) {
    Graph gf = buildFrozenNorm(false), gu = buildFrozenNorm(false);
    Executor fused(gf), plain(gu, false);
    fused.releaseForwardValues(release);
    plain.releaseForwardValues(release);
    for (int step = 0; step < 4; ++step) {
      ops::RunContext ctx;
      ctx.training = step % 2 == 0;
      const auto f = feed(30 + step);
      fused.forward(f, ctx);
      plain.forward(f, ctx);
      ASSERT_TRUE(sameBits(fused.value("logits"), plain.value("logits")))
          << "step " << step << " release " << release;
      if (release) {
        EXPECT_FALSE(fused.hasValue("c1"));
        EXPECT_LE(fused.pooledBytes(), plain.pooledBytes()) << "step " << step;
        continue;
      }
      EXPECT_TRUE(fused.value("c1").sameStorage(fused.value("bn")));
      EXPECT_TRUE(fused.value("c1").sameStorage(fused.value("r1")));
      EXPECT_TRUE(sameBits(fused.value("r1"), plain.value("r1")));
    }
  }
  Graph gt = buildFrozenNorm(true), gp = buildFrozenNorm(true);
  Executor trained(gt), plain(gp, false);
  ops::RunContext ctx;
  ctx.training = true;
  const auto f = feed(7);
  trained.forward(f, ctx);
  plain.forward(f, ctx);
  EXPECT_FALSE(trained.value("c1").sameStorage(trained.value("bn")));
  Tensor seed({4, 5});
  seed.fill(0.5f);
  trained.backward({{"logits", seed}}, ctx);
  plain.backward({{"logits", seed}}, ctx);
  for (const auto& p : gt.trainable)
    ASSERT_TRUE(sameBits(trained.grad(p), plain.grad(p))) << p;
}

// A training BatchNormalization takes its per-(image, channel) sums from the
// Conv that wrote its input (fuse.h linkRowSums): build()'s graph has one
// such pair (c1 -> bn; the test above checks the bits against an unfused
// executor). The sums are the BN's: altered ones change its output, and
// after an inference forward they are not used.
TEST(FuseActivations, BatchNormTakesRowSumsFromTheConv) {
  Graph g = build();
  auto& reg = ops::OpRegistry::get();
  std::vector<std::unique_ptr<ops::Op>> ops;
  for (const Node& nd : g.nodes) ops.push_back(reg.create(nd.op_type, nd.attrs, nd.name));
  auto links = detail::linkRowSums(g, ops);
  ASSERT_EQ(links.size(), 1u);
  ops::RunContext train;
  train.training = true;
  Tensor x = test::randomTensor({4, 3, 6, 6}, 8, -2.f, 2.f), y;
  Tensor w = g.initializers.at("c1.w");
  ops[0]->forward({&x, &w}, {&y}, train);  // c1
  ASSERT_TRUE(links[0]->valid);
  ASSERT_EQ(links[0]->sums.size(), 4u * 8u);
  std::vector<Tensor> bn_in = {g.initializers.at("bn.s"), g.initializers.at("bn.b"),
                               g.initializers.at("bn.m"), g.initializers.at("bn.v")};
  auto bn = [&](ops::RunContext& ctx) {
    std::vector<Tensor> st = bn_in;  // running statistics: fresh copies
    Tensor out;
    ops[1]->forward({&y, &st[0], &st[1], &st[2], &st[3]}, {&out}, ctx);
    return out;
  };
  const Tensor linked = bn(train);
  auto plain = reg.create("BatchNormalization", {}, "plain");
  std::vector<Tensor> st = bn_in;
  Tensor own;
  plain->forward({&y, &st[0], &st[1], &st[2], &st[3]}, {&own}, train);
  EXPECT_TRUE(sameBits(linked, own));
  for (float& v : links[0]->sums) v += 100.f;
  EXPECT_FALSE(sameBits(bn(train), own));
  ops::RunContext infer;
  ops[0]->forward({&x, &w}, {&y}, infer);
  EXPECT_FALSE(links[0]->valid);
  EXPECT_TRUE(sameBits(bn(train), own));  // not valid: computes its own sums
}

// dx = dy in backward, y = x / 2 forward: a straight-through op whose
// gradient the executor hands over (Op::backwardIsIdentity).
class HalveStraightThrough : public ops::Op {
 public:
  void forward(const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
               ops::RunContext&) override {
    out[0]->resize(in[0]->shape());
    for (int64_t i = 0; i < in[0]->numel(); ++i) out[0]->f32()[i] = in[0]->f32()[i] * 0.5f;
  }
  void backward(const std::vector<Tensor*>& in, const std::vector<Tensor*>&,
                const std::vector<const Tensor*>& dout, const std::vector<Tensor*>& din,
                ops::RunContext&) override {
    din[0]->resize(in[0]->shape());
    din[0]->copyFrom(*dout[0]);
  }
  bool backwardIsIdentity() const override { return true; }
};

// Handed-over gradients whose input has a second reader: c1 feeds a Relu
// (masked by the conv reading it) and an Add; pw feeds the straight-through
// op and another Add. Both Adds run their backward first, so the hand-over
// must add to the gradient already there. Parameter gradients equal those of
// a run that executes every backward (kept intermediate gradients).
TEST(FuseActivations, HandedOverGradientsAddToOtherReaders) {
  auto& reg = ops::OpRegistry::get();
  if (!reg.has("TestHalveStraightThrough"))
    reg.add("TestHalveStraightThrough",
            [](const ops::Attrs&) { return std::make_unique<HalveStraightThrough>(); });
  auto build2 = [] {
    Graph g;
    g.inputs = {{"x", {-1, 3, 5, 5}, DType::kF32}};
    g.outputs = {{"logits", {-1, 4}, DType::kF32}};
    uint64_t seed = 11;
    auto param = [&](const std::string& n, Shape s) {
      g.addInitializer(n, test::randomTensor(std::move(s), seed++, -0.6f, 0.6f), true);
    };
    param("c1.w", {6, 3, 3, 3});
    Node c1 = node("c1", "Conv", {"x", "c1.w"}, {"c1"});
    c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    g.nodes.push_back(c1);
    g.nodes.push_back(node("r", "Relu", {"c1"}, {"r"}));
    param("pw.w", {6, 6, 1, 1});
    g.nodes.push_back(node("pw", "Conv", {"r", "pw.w"}, {"pw"}));
    g.nodes.push_back(node("q", "TestHalveStraightThrough", {"pw"}, {"q"}));
    param("c3.w", {6, 6, 1, 1});
    g.nodes.push_back(node("c3", "Conv", {"q", "c3.w"}, {"c3"}));
    g.nodes.push_back(node("add", "Add", {"c3", "c1"}, {"add"}));
    g.nodes.push_back(node("add2", "Add", {"add", "pw"}, {"add2"}));
    addHead(g, "add2", test::randomTensor({4, 6}, seed++, -0.6f, 0.6f));
    return g;
  };
  Graph ga = build2(), gb = build2(), gc = build2();
  Executor handed(ga), unfused(gb, false), every(gc);
  every.keepIntermediateGrads(true);
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 2; ++step) {
    const std::map<std::string, Tensor> f = {
        {"x", test::randomTensor({3, 3, 5, 5}, 40 + step, -2.f, 2.f)}};
    Tensor seed({3, 4});
    seed.fill(0.75f);
    seed.f32()[5] = -1.5f;
    for (Executor* e : {&handed, &unfused, &every}) {
      e->forward(f, ctx);
      e->backward({{"logits", seed}}, ctx);
    }
    for (const auto& p : ga.trainable) {
      EXPECT_TRUE(sameBits(handed.grad(p), every.grad(p))) << p << " step " << step;
      EXPECT_TRUE(sameBits(unfused.grad(p), every.grad(p))) << p << " step " << step;
    }
  }
}

}  // namespace
}  // namespace slim::graph
