// Placeholder: the op family is being written; registers nothing yet.
#include "trainer/ops/op.h"

namespace slim::ops {
void registerTensorOps(OpRegistry&) {}
}  // namespace slim::ops
