// Tensor storage semantics, RNG determinism and enforce messages.
#include <gtest/gtest.h>

#include "trainer/core/rng.h"
#include "trainer/core/tensor.h"

namespace slim {

TEST(Tensor, ZeroInitialisedAndShallowCopies) {
  Tensor a({2, 3});
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.f32()[5], 0.f);
  Tensor b = a;
  b.f32()[0] = 7.f;
  EXPECT_EQ(a.f32()[0], 7.f);
  Tensor c = a.clone();
  c.f32()[0] = 1.f;
  EXPECT_EQ(a.f32()[0], 7.f);
}

TEST(Tensor, ReshapeInfersAndRejects) {
  Tensor a({2, 3, 4});
  EXPECT_EQ(a.reshaped({-1, 4}).shape(), (Shape{6, 4}));
  EXPECT_THROW(a.reshaped({5, -1}), Error);
  EXPECT_THROW(a.reshaped({7}), ShapeError);
}

TEST(Tensor, DTypeChecked) {
  Tensor a({2}, DType::kI64);
  EXPECT_THROW(a.f32(), Error);
  EXPECT_NO_THROW(a.data<int64_t>());
}

TEST(Tensor, ResizeReusesUnsharedStorage) {
  Tensor a({100});
  const void* p = a.raw();
  a.resize({10, 5});
  EXPECT_EQ(a.raw(), p);
  Tensor keep = a;
  a.resize({10, 5});
  EXPECT_NE(a.raw(), p);  // shared storage is never overwritten
}

TEST(Enforce, MessageCarriesBothValues) {
  try {
    int x = 3;
    SLIM_ENFORCE_EQ(x, 4, "batch size");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("3 vs 4"), std::string::npos) << m;
    EXPECT_NE(m.find("batch size"), std::string::npos) << m;
    EXPECT_NE(m.find("tensor_test.cc"), std::string::npos) << m;
  }
}

TEST(Rng, DeterministicAndRestorable) {
  Rng a(42), b(42);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
  Rng::State s = a.state();
  uint64_t v = a.next();
  a.setState(s);
  EXPECT_EQ(a.next(), v);
  for (int i = 0; i < 1000; ++i) {
    float u = a.uniform();
    EXPECT_GE(u, 0.f);
    EXPECT_LT(u, 1.f);
    EXPECT_LT(a.below(7), 7u);
  }
}

}  // namespace slim
