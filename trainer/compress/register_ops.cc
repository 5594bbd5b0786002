// registerCompressOps (see register_ops.h).
#include "trainer/compress/register_ops.h"

#include "trainer/compress/distill/distill_ops.h"
#include "trainer/compress/export/qdq_ops.h"
#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {

void registerCompressOps(ops::OpRegistry& r) {
  registerQuantOps(r);
  registerDistillOps(r);
  registerQdqOps(r);
}

}  // namespace slim::compress
