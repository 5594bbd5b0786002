// Adapter that lets ops synchronise state (sync batch norm, observer abs-max)
// through a communicator without the ops layer knowing about comm.
#pragma once

#include "comm/communicator.h"
#include "trainer/ops/op.h"

namespace slim::train {

class CommStateSync : public ops::StateSync {
 public:
  explicit CommStateSync(comm::Communicator& c) : comm_(c) {}
  void allreduce(float* data, size_t n, ops::SyncOp op) override {
    comm::CollectiveOptions o;
    o.tag = op == ops::SyncOp::kSum ? "state sync (sum)" : "state sync (max)";
    comm_.allreduce(data, n, DType::kF32,
                    op == ops::SyncOp::kSum ? comm::ReduceOp::kSum : comm::ReduceOp::kMax, o);
  }

 private:
  comm::Communicator& comm_;
};

}  // namespace slim::train
