// The sample-layout rules (rank_reduction/sample_layout.h) on the shapes a
// transformer's attention and MLP produce, the ops that must answer
// "unknown", and the executor handing a MatMul its input's layout.
#include <gtest/gtest.h>

#include "trainer/rank_reduction/sample_layout.h"

namespace slim::rank_reduction {
namespace {

SampleLayout rule(const std::string& type, const ops::Attrs& a,
                  const std::vector<std::pair<SampleLayout, Shape>>& in, const Shape& out) {
  std::vector<SampleLayout> l;
  std::vector<const Shape*> s;
  for (const auto& p : in) {
    l.push_back(p.first);
    s.push_back(&p.second);
  }
  return outputSampleLayout(type, a, l, s, out);
}

ops::Attrs perm(std::vector<int64_t> p) {
  ops::Attrs a;
  a.set("perm", std::move(p));
  return a;
}

constexpr int64_t N = 8, T = 197, E = 384, H = 6, D = 64;

TEST(SampleLayout, InputsHoldSamplesInDimensionZero) {
  EXPECT_EQ(inputSampleLayout({N, 3, 224, 224}), (SampleLayout{1, N, 3 * 224 * 224}));
  EXPECT_EQ(inputSampleLayout({N}), (SampleLayout{1, N, 1}));
  EXPECT_FALSE(inputSampleLayout({}).known());
}

TEST(SampleLayout, AttentionSequenceFirst) {
  const SampleLayout bte = inputSampleLayout({N, T, E});
  // x.transpose(0, 1): [T, N, E].
  const SampleLayout tne = rule("Transpose", perm({1, 0, 2}), {{bte, {N, T, E}}}, {T, N, E});
  EXPECT_EQ(tne, (SampleLayout{T, N, E}));
  // The projection keeps it; a reshape to [T, N*H, D] and the heads moved
  // first: sample n owns rows n*H .. n*H + H - 1 of dimension 0.
  const SampleLayout proj = rule("MatMul", {}, {{tne, {T, N, E}}, {{}, {E, 3 * E}}}, {T, N, 3 * E});
  EXPECT_EQ(proj, (SampleLayout{T, N, 3 * E}));
  const SampleLayout heads = rule("Reshape", {}, {{tne, {T, N, E}}, {{}, {3}}}, {T, N * H, D});
  EXPECT_EQ(sampleDim({T, N * H, D}, heads), 1);
  const SampleLayout nh =
      rule("Transpose", perm({1, 0, 2}), {{heads, {T, N * H, D}}}, {N * H, T, D});
  EXPECT_EQ(nh, (SampleLayout{1, N, H * T * D}));
  // Scores, softmax, context: batched products keep dimension 0.
  const SampleLayout scores =
      rule("MatMul", {}, {{nh, {N * H, T, D}}, {nh, {N * H, D, T}}}, {N * H, T, T});
  EXPECT_EQ(scores, (SampleLayout{1, N, H * T * T}));
  // Back to [T, N*H, D], flattened to [T*N, E] for the output projection
  // (Gemm): no dimension holds the samples, the layout still says where.
  const SampleLayout back =
      rule("Transpose", perm({1, 0, 2}), {{nh, {N * H, T, D}}}, {T, N * H, D});
  const SampleLayout flat = rule("Reshape", {}, {{back, {T, N * H, D}}, {{}, {2}}}, {T * N, E});
  EXPECT_EQ(flat, (SampleLayout{T, N, E}));
  EXPECT_EQ(sampleDim({T * N, E}, flat), -1);
  // PACT and the fake quantizer before the projection keep it.
  EXPECT_EQ(rule("Pact", {}, {{flat, {T * N, E}}, {{}, {1}}}, {T * N, E}), flat);
  EXPECT_EQ(rule("FakeQuantAct", {}, {{flat, {T * N, E}}, {{}, {1}}}, {T * N, E}), flat);
  // A Gather of rows might permute them: unknown.
  EXPECT_FALSE(rule("Gather", {}, {{flat, {T * N, E}}, {{}, {T * N}}}, {T * N, E}).known());
  ops::Attrs gemm;
  gemm.set("transB", int64_t{1});
  EXPECT_EQ(rule("Gemm", gemm, {{flat, {T * N, E}}, {{}, {E, E}}, {{}, {E}}}, {T * N, E}), flat);
}

TEST(SampleLayout, ElementwiseReductionsConcat) {
  const SampleLayout x = inputSampleLayout({N, T, E});
  // A broadcast bias add, whichever side the data is on.
  EXPECT_EQ(rule("Add", {}, {{{}, {E}}, {x, {N, T, E}}}, {N, T, E}), x);
  // LayerNorm's mean over the last axis, keepdims.
  EXPECT_EQ(rule("ReduceMean", {}, {{x, {N, T, E}}}, {N, T, 1}), (SampleLayout{1, N, T}));
  // The class token concatenated along the tokens.
  EXPECT_EQ(rule("Concat", {}, {{{}, {N, 1, E}}, {inputSampleLayout({N, T - 1, E}), {N, T - 1, E}}},
                 {N, T, E}),
            x);
}

TEST(SampleLayout, UnknownWhenNotFollowed) {
  const SampleLayout x = inputSampleLayout({N, N, E});
  // A reduction over the samples, or along an earlier dimension.
  EXPECT_FALSE(rule("ReduceSum", {}, {{x, {N, N, E}}}, {1, N, E}).known());
  const SampleLayout tne{T, N, E};
  EXPECT_FALSE(rule("ReduceMean", {}, {{tne, {T, N, E}}}, {1, N, E}).known());
  // Gathered along the samples (even when the shape stays), Einsum, shapes.
  ops::Attrs g;
  g.set("axis", int64_t{0});
  EXPECT_FALSE(rule("Gather", g, {{x, {N, N, E}}, {{}, {N}}}, {N, N, E}).known());
  g.set("axis", int64_t{2});
  EXPECT_EQ(rule("Gather", g, {{x, {N, N, E}}, {{}, {4}}}, {N, N, 4}), (SampleLayout{1, N, N * 4}));
  EXPECT_FALSE(rule("Einsum", {}, {{x, {N, N, E}}}, {N, N, E}).known());
  // An embedding: the table gathered by per-sample token ids.
  const SampleLayout ids = inputSampleLayout({N, 12});
  EXPECT_EQ(rule("Gather", {}, {{{}, {100, E}}, {ids, {N, 12}}}, {N, 12, E}),
            (SampleLayout{1, N, 12 * E}));
  EXPECT_FALSE(rule("Shape", {}, {{x, {N, N, E}}}, {3}).known());
  // A transpose swapping two dimensions of the same size follows the samples.
  EXPECT_EQ(rule("Transpose", perm({1, 0, 2}), {{x, {N, N, E}}}, {N, N, E}),
            (SampleLayout{N, N, E}));
  // Nothing known in, nothing known out.
  EXPECT_FALSE(rule("Relu", {}, {{{}, {N, E}}}, {N, E}).known());
}

}  // namespace
}  // namespace slim::rank_reduction
