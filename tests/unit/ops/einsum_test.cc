// Einsum: values against a naive loop over every label assignment (in
// double) on many equations — maxvit's attention, batch matmul, outer and
// inner products, trace and sums, transposes, diagonals, "..." with
// broadcasting, three operands, implicit outputs — finite-difference
// gradients, the exact two-rank weight gradient, thread-count invariance,
// errors, and ONNX's own einsum test cases (libonnx-testdata).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/nn_extra_util.h"
#include "trainer/models/onnx/tensor_proto.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

using test::randomTensor;

ops::Attrs eq(const std::string& e) {
  ops::Attrs a;
  a.set("equation", e);
  return a;
}

Tensor einsum(const std::string& e, std::vector<Tensor> in) {
  auto op = ops::OpRegistry::get().create("Einsum", eq(e), "t");
  return test::runForward(*op, in, 1, false)[0];
}

// The reference: `ref` is explicit ("ab,bc->ac"), letters only; a size-1
// dimension broadcasts against a larger one (as "..." does). Sums in double
// over every assignment of every letter.
Tensor naive(const std::string& ref, const std::vector<Tensor>& in) {
  const size_t arrow = ref.find("->");
  std::vector<std::string> terms;
  for (size_t s = 0;;) {
    const size_t c = ref.find(',', s);
    terms.push_back(ref.substr(s, std::min(c, arrow) - s));
    if (c == std::string::npos || c > arrow) break;
    s = c + 1;
  }
  const std::string out = ref.substr(arrow + 2);
  std::map<char, int64_t> size;
  for (size_t i = 0; i < terms.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(in[i].ndim()), terms[i].size()) << ref;
    for (size_t d = 0; d < terms[i].size(); ++d)
      size[terms[i][d]] = std::max(size[terms[i][d]], in[i].dim(static_cast<int>(d)));
  }
  std::vector<char> letters;
  for (auto& [c, n] : size) letters.push_back(c);
  Shape os;
  for (char c : out) os.push_back(size[c]);
  std::vector<double> acc(static_cast<size_t>(numelOf(os)), 0.0);
  std::map<char, int64_t> idx;
  for (char c : letters) idx[c] = 0;
  int64_t total = 1;
  for (char c : letters) total *= size[c];
  for (int64_t n = 0; n < total; ++n) {
    int64_t rem = n;
    for (size_t k = letters.size(); k-- > 0;) {
      idx[letters[k]] = rem % size[letters[k]];
      rem /= size[letters[k]];
    }
    double p = 1.0;
    for (size_t i = 0; i < terms.size(); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < terms[i].size(); ++d) {
        const int64_t dn = in[i].dim(static_cast<int>(d));
        off = off * dn + (dn == 1 ? 0 : idx[terms[i][d]]);
      }
      p *= in[i].f32()[off];
    }
    int64_t o = 0;
    for (char c : out) o = o * size[c] + idx[c];
    acc[static_cast<size_t>(o)] += p;
  }
  Tensor y(os);
  for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = static_cast<float>(acc[i]);
  return y;
}

struct Case {
  Case(std::string e, std::vector<Shape> s, std::string r = "", std::vector<Shape> rs = {})
      : equation(std::move(e)), shapes(std::move(s)), ref(std::move(r)), ref_shapes(std::move(rs)) {}
  std::string equation;           // as the node has it
  std::vector<Shape> shapes;
  std::string ref;                // the naive equation ("" = same as equation)
  std::vector<Shape> ref_shapes;  // reshaped inputs for the reference (empty = same)
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.equation; }
// Test names: "ij,jk->ik" is "ij_jk_to_ik", "..." is "E"; spaces dropped.
std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  std::string e = info.param.equation, n;
  for (size_t k = 0; k < e.size(); ++k) {
    if (e.compare(k, 2, "->") == 0) {
      n += "_to_";
      ++k;
    } else if (e.compare(k, 3, "...") == 0) {
      n += 'E';
      k += 2;
    } else if (e[k] == ',') {
      n += '_';
    } else if (e[k] != ' ') {
      n += e[k];
    }
  }
  return std::to_string(info.index) + "_" + n;
}

const Case kCases[] = {
    // maxvit_t (torchvision 0.14) attention, with its spaces.
    {"B G H I D, B G H J D -> B G H I J", {{2, 2, 3, 4, 5}, {2, 2, 3, 6, 5}}, "BGHID,BGHJD->BGHIJ"},
    {"B G H I J, B G H J D -> B G H I D", {{2, 2, 3, 4, 6}, {2, 2, 3, 6, 5}}, "BGHIJ,BGHJD->BGHID"},
    {"bij,bjk->bik", {{3, 4, 5}, {3, 5, 2}}},
    {"bij, bjk -> bik", {{1, 4, 5}, {1, 5, 2}}, "bij,bjk->bik"},
    {"bji,bjk->bik", {{3, 5, 4}, {3, 5, 2}}},   // A transposed in place
    {"bij,bkj->bik", {{3, 4, 5}, {3, 2, 5}}},   // B transposed in place
    {"ibj,bkj->kbi", {{4, 3, 5}, {3, 2, 5}}},   // packed, output permuted
    {"ij,jk->ik", {{4, 5}, {5, 3}}},
    {"ij,jk", {{4, 5}, {5, 3}}, "ij,jk->ik"},
    {"i,j->ij", {{4}, {5}}},
    {"i,j", {{4}, {5}}, "i,j->ij"},
    {"i,i", {{7}, {7}}, "i,i->"},
    {"i,i->", {{7}, {7}}},
    {"ii", {{4, 4}}, "ii->"},
    {"ii->i", {{4, 4}}},
    {"...ii->...i", {{3, 5, 5}}, "bii->bi"},
    {"ij->i", {{3, 4}}},
    {"ij->", {{3, 4}}},
    {"ijk->", {{2, 3, 4}}},
    {"ij->ji", {{3, 4}}},
    {"ijk->kji", {{2, 3, 4}}},
    {"ba", {{3, 4}}, "ba->ab"},
    {"Ab,bc", {{3, 4}, {4, 2}}, "Ab,bc->Ac"},
    {"bc,Ab", {{4, 2}, {3, 4}}, "bc,Ab->Ac"},
    {"...ij,...jk->...ik", {{2, 3, 4, 5}, {3, 5, 6}}, "xyij,xyjk->xyik", {{2, 3, 4, 5}, {1, 3, 5, 6}}},
    {"...ij,...jk->...ik", {{2, 1, 4, 5}, {3, 5, 6}}, "xyij,xyjk->xyik", {{2, 1, 4, 5}, {1, 3, 5, 6}}},
    {"...ij,jk", {{2, 3, 4, 5}, {5, 6}}, "xyij,jk->xyik"},
    {"...i,...i", {{2, 3, 4}, {3, 4}}, "xyi,xyi->xy", {{2, 3, 4}, {1, 3, 4}}},
    {"i...->...", {{4, 2, 3}}, "ixy->xy"},
    {"...ij->...ji", {{5, 2, 3}}, "bij->bji"},
    {"ijk,jl->il", {{3, 4, 2}, {4, 5}}},         // k summed from A before the GEMM
    {"ij,jkl->il", {{3, 4}, {4, 2, 5}}},         // k summed from B before the GEMM
    {"iij,jk->ik", {{3, 3, 4}, {4, 2}}},         // diagonal inside a contraction
    {"bhid,hde->bhie", {{4, 2, 3, 5}, {2, 5, 6}}},
    {"bn,nm->bm", {{6, 5}, {5, 3}}},
    {"ij,jk,kl->il", {{3, 4}, {4, 5}, {5, 2}}},
    {"i,i,i->", {{6}, {6}, {6}}},
    {"bi,bj,bk->bijk", {{2, 3}, {2, 4}, {2, 2}}},
    {"ab,cd->", {{2, 3}, {4, 5}}},               // everything summed away
};

class EinsumForward : public ::testing::TestWithParam<Case> {};

TEST_P(EinsumForward, MatchesNaive) {
  const Case& c = GetParam();
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.shapes.size(); ++i) in.push_back(randomTensor(c.shapes[i], 10 + i));
  std::vector<Tensor> rin;
  for (size_t i = 0; i < in.size(); ++i)
    rin.push_back(c.ref_shapes.empty() ? in[i] : in[i].reshaped(c.ref_shapes[i]));
  const Tensor want = naive(c.ref.empty() ? c.equation : c.ref, rin);
  const Tensor got = einsum(c.equation, in);
  ASSERT_EQ(shapeStr(got.shape()), shapeStr(want.shape())) << c.equation;
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-5f * (1.f + std::fabs(want.f32()[i])))
        << c.equation << " element " << i;
}

INSTANTIATE_TEST_SUITE_P(Equations, EinsumForward, ::testing::ValuesIn(kCases), caseName);

// The 2-D case is the project's GEMM: the same bits as MatMul.
TEST(Einsum, MatmulHasMatMulsBits) {
  Tensor a = randomTensor({7, 33}, 1), b = randomTensor({33, 9}, 2);
  auto mm = ops::OpRegistry::get().create("MatMul", {}, "mm");
  std::vector<Tensor> in{a, b};
  const Tensor want = test::runForward(*mm, in, 1, false)[0];
  for (const char* e : {"ij,jk->ik", "ij,kj->ik", "ji,jk->ik", "ij,jk"}) {
    std::vector<Tensor> x{a, b};
    if (e[1] == 'i') x[0] = einsum("ij->ji", {a});
    if (e[3] == 'k') x[1] = einsum("ij->ji", {b});
    const Tensor got = einsum(e, x);
    ASSERT_EQ(got.numel(), want.numel());
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_EQ(got.f32()[i], want.f32()[i]) << e << " element " << i;
  }
}

class EinsumGrad : public ::testing::TestWithParam<Case> {};

TEST_P(EinsumGrad, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.shapes.size(); ++i) in.push_back(randomTensor(c.shapes[i], 30 + i));
  test::gradCheck("Einsum", eq(c.equation), in, 1);
}

const Case kGradCases[] = {
    {"B G H I D, B G H J D -> B G H I J", {{1, 2, 2, 3, 4}, {1, 2, 2, 5, 4}}},
    {"B G H I J, B G H J D -> B G H I D", {{1, 2, 2, 3, 5}, {1, 2, 2, 5, 4}}},
    {"bij,bjk->bik", {{2, 3, 4}, {2, 4, 2}}},
    {"ibj,bkj->kbi", {{3, 2, 4}, {2, 2, 4}}},
    {"i,j->ij", {{3}, {4}}},
    {"i,i", {{5}, {5}}},
    {"ii", {{3, 3}}},
    {"ii->i", {{3, 3}}},
    {"...ii->...i", {{2, 3, 3}}},
    {"ij->", {{3, 4}}},
    {"ijk->kji", {{2, 3, 4}}},
    {"...ij,...jk->...ik", {{2, 1, 3, 4}, {3, 4, 2}}},
    {"ijk,jl->il", {{3, 4, 2}, {4, 5}}},
    {"iij,jk->ik", {{3, 3, 4}, {4, 2}}},
    {"bhid,hde->bhie", {{3, 2, 3, 4}, {2, 4, 3}}},
    {"bn,nm", {{9, 5}, {5, 3}}},
};
INSTANTIATE_TEST_SUITE_P(Equations, EinsumGrad, ::testing::ValuesIn(kGradCases), caseName);

// Gradients of `in` for output gradient `dy`, the inputs `params` flagged as
// rank-reduced (as the executor flags a weight on 1 rank and on N).
std::vector<Tensor> einsumGrads(const std::string& e, std::vector<Tensor> in, const Tensor& dy,
                                rank_reduction::StateSync* sync, const std::vector<bool>& params) {
  return test::grads("Einsum", eq(e), std::move(in), dy, sync, params);
}

// Slice [b, e) of axis `axis`.
Tensor part(const Tensor& t, int axis, int64_t b, int64_t e) {
  Shape s = t.shape();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= s[d];
  for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  const int64_t n = s[axis];
  s[axis] = e - b;
  Tensor out(s);
  for (int64_t o = 0; o < outer; ++o)
    std::copy(t.f32() + (o * n + b) * inner, t.f32() + (o * n + e) * inner,
              out.f32() + o * (e - b) * inner);
  return out;
}

// The data input `data` (the other is a weight) holds the samples on axis
// `x_axis`, the output on `y_axis`: the whole batch on one rank and its
// halves on two thread-ranks give the weight gradient's bits (times 2: the
// op returns the mean over ranks).
void expectWeightGradRankExact(const std::string& e, Tensor x, Tensor w, size_t data,
                               int x_axis, int y_axis) {
  std::vector<Tensor> in(2);
  in[data] = x;
  in[1 - data] = w;
  std::vector<bool> params(2, false);
  params[1 - data] = true;
  const Tensor y = einsum(e, in);
  const Tensor dy = randomTensor(y.shape(), 77);
  const Tensor full = einsumGrads(e, in, dy, nullptr, params)[1 - data];
  const int64_t half = x.dim(x_axis) / 2;
  const auto ranks = test::onTwoRanks([&](int r, test::ExactSync* sync) {
    std::vector<Tensor> rin = in;
    rin[data] = part(x, x_axis, r * half, (r + 1) * half);
    return einsumGrads(e, rin, part(dy, y_axis, r * half, (r + 1) * half), sync, params);
  });
  const Tensor got[2] = {ranks[0][1 - data], ranks[1][1 - data]};
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(got[r].numel(), full.numel()) << e;
    for (int64_t k = 0; k < full.numel(); ++k)
      ASSERT_EQ(got[r].f32()[k] * 2.f, full.f32()[k]) << e << " element " << k << " rank " << r;
  }
}

// A weight's gradient sums over the data operand's samples: 1 rank with the
// whole batch and 2 ranks with halves (multiples of 8 samples) give the same
// bits, wherever the samples are.
TEST(Einsum, WeightGradientsAreRankExact) {
  expectWeightGradRankExact("bhid,hde->bhie", randomTensor({16, 2, 3, 40}, 51),
                            randomTensor({2, 40, 6}, 52), 0, 0, 0);
  expectWeightGradRankExact("bn,nm->bm", randomTensor({32, 300}, 53, -4.f, 4.f),
                            randomTensor({300, 7}, 54), 0, 0, 0);
  // Samples on axis 1 (sequence-first attention projections), weight first.
  expectWeightGradRankExact("kd,tbk->tbd", randomTensor({3, 16, 40}, 55),
                            randomTensor({40, 5}, 56), 1, 1, 1);
  // "..." batch with a broadcast weight.
  expectWeightGradRankExact("...ij,jk->...ik", randomTensor({16, 3, 4, 20}, 57),
                            randomTensor({20, 6}, 58), 0, 0, 0);
  auto op = ops::OpRegistry::get().create("Einsum", eq("bhid,hde->bhie"), "t");
  EXPECT_TRUE(op->reducesGradOverRanks(1));
  auto op1 = ops::OpRegistry::get().create("Einsum", eq("ij->ji"), "t");
  EXPECT_FALSE(op1->reducesGradOverRanks(0));
}

TEST(Einsum, SameBitsForAnyThreadCount) {
  test::expectSameBitsForAnyThreadCount(
      "Einsum", eq("BGHID,BGHJD->BGHIJ"),
      {randomTensor({2, 4, 3, 49, 32}, 61), randomTensor({2, 4, 3, 49, 32}, 62)});
  test::expectSameBitsForAnyThreadCount(
      "Einsum", eq("bhid,hde->bhie"),
      {randomTensor({16, 2, 9, 40}, 63), randomTensor({2, 40, 17}, 64)});
  test::expectSameBitsForAnyThreadCount("Einsum", eq("ijk->k"),
                                        {randomTensor({300, 200, 3}, 65)});
}

std::string errorOf(const std::string& e, std::vector<Tensor> in) {
  try {
    auto op = ops::OpRegistry::get().create("Einsum", eq(e), "node7");
    test::runForward(*op, in, 1, false);
  } catch (const Error& err) {
    return err.what();
  }
  return "";
}

TEST(Einsum, ErrorsNameNodeEquationAndShapes) {
  std::string m = errorOf("ij,j1->i", {randomTensor({2, 3}, 1), randomTensor({3, 1}, 2)});
  EXPECT_NE(m.find("node7"), std::string::npos) << m;
  EXPECT_NE(m.find("ij,j1->i"), std::string::npos) << m;
  EXPECT_NE(m.find("'1'"), std::string::npos) << m;
  m = errorOf("ij,jk->ik", {randomTensor({2, 3}, 1), randomTensor({4, 5}, 2)});
  EXPECT_NE(m.find("node7"), std::string::npos) << m;
  EXPECT_NE(m.find("ij,jk->ik"), std::string::npos) << m;
  EXPECT_NE(m.find("letter 'j' is 3"), std::string::npos) << m;
  EXPECT_NE(m.find("found 4"), std::string::npos) << m;
  m = errorOf("ijk->i", {randomTensor({2, 3}, 1)});
  EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("expects 3"), std::string::npos) << m;
  m = errorOf("ij,jk->ik", {randomTensor({2, 3}, 1)});
  EXPECT_NE(m.find("2 input terms, found 1 inputs"), std::string::npos) << m;
  m = errorOf("ij->ix", {randomTensor({2, 3}, 1)});
  EXPECT_NE(m.find("output letter 'x' is in no input"), std::string::npos) << m;
  m = errorOf("...ij,...jk->...ik", {randomTensor({2, 3, 4}, 1), randomTensor({5, 4, 2}, 2)});
  EXPECT_NE(m.find("do not broadcast: 5 vs 2"), std::string::npos) << m;
}

// ONNX's own einsum cases (Debian's libonnx-testdata). Their tensors are
// float64, which the importer refuses as graph inputs, so the onnx_testdata
// test reports them unsupported; here the equation comes from the model, the
// data (converted to float32) from the test data set, and the op runs alone.
TEST(Einsum, OnnxTestdataCases) {
  namespace fs = std::filesystem;
  const fs::path root = "/usr/share/libonnx-testdata/data/node";
  if (!fs::is_directory(root)) GTEST_SKIP() << root << " is missing";
  int ran = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("test_einsum_", 0) != 0) continue;
    onnx::ModelProto m;
    std::ifstream f(e.path() / "model.onnx", std::ios::binary);
    ASSERT_TRUE(m.ParseFromIstream(&f)) << name;
    ASSERT_EQ(m.graph().node_size(), 1) << name;
    std::string equation;
    for (const auto& a : m.graph().node(0).attribute())
      if (a.name() == "equation") equation = a.s();
    std::vector<Tensor> in;
    for (int i = 0; fs::exists(e.path() / "test_data_set_0" / ("input_" + std::to_string(i) + ".pb")); ++i)
      in.push_back(models::readTensorProto(
          (e.path() / "test_data_set_0" / ("input_" + std::to_string(i) + ".pb")).string()));
    const Tensor want =
        models::readTensorProto((e.path() / "test_data_set_0" / "output_0.pb").string());
    const Tensor got = einsum(equation, in);
    ASSERT_EQ(shapeStr(got.shape()), shapeStr(want.shape())) << name << " " << equation;
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::fabs(want.f32()[i]))
          << name << " '" << equation << "' element " << i;
    ++ran;
  }
  EXPECT_EQ(ran, 5) << "einsum cases found in " << root;
}

}  // namespace
}  // namespace slim
