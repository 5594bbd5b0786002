// main() of the unit tests that link the compression passes (slim_compress,
// slim_train): registers every op family once, as launcher/run.cc does,
// then runs the tests.
#include <gtest/gtest.h>

#include "trainer/compress/register_ops.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  slim::compress::registerCompressOps(slim::ops::OpRegistry::get());
  return RUN_ALL_TESTS();
}
