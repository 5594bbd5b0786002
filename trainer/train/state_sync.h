// Adapter that lets ops synchronise state (sync batch norm, observer abs-max)
// through a communicator without the ops layer knowing about comm.
#pragma once

#include <cstring>
#include <vector>

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
  // Allgather of the raw bytes (no arithmetic in the transport), then a sum
  // in rank order: exact for any backend and identical on every rank.
  void sumDoubles(double* data, size_t n) override {
    const size_t bytes = n * sizeof(double);
    gathered_.resize(static_cast<size_t>(comm_.size()) * n);
    comm::CollectiveOptions o;
    o.tag = "state sync (double sum)";
    comm_.allgather(data, gathered_.data(), bytes, DType::kU8, o);
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (int r = 0; r < comm_.size(); ++r) s += gathered_[static_cast<size_t>(r) * n + i];
      data[i] = s;
    }
  }

 private:
  comm::Communicator& comm_;
  std::vector<double> gathered_;
};

}  // namespace slim::train
