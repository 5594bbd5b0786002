// Adapter that lets ops synchronise state (sync batch norm, observer abs-max)
// through a communicator without the ops layer knowing about comm.
// Rank reduction's comm-backed StateSync (overview: rank_reduction.h); part of
// the train layer (rank_reduction/sources.cmake).
#pragma once

#include <cstring>
#include <vector>

#include "comm/communicator.h"
#include "trainer/rank_reduction/state_sync.h"

namespace slim::rank_reduction {

class CommStateSync : public StateSync {
 public:
  explicit CommStateSync(comm::Communicator& c) : comm_(c) {}
  void allreduce(float* data, size_t n, SyncOp op) override {
    comm::CollectiveOptions o;
    o.tag = op == SyncOp::kSum ? "state sync (sum)" : "state sync (max)";
    comm_.allreduce(data, n, DType::kF32,
                    op == SyncOp::kSum ? comm::ReduceOp::kSum : comm::ReduceOp::kMax, o);
  }
  // Allgather of the raw bytes (no arithmetic in the transport), then an
  // integer sum: exact for any backend, identical on every rank.
  void sumFixed(Fixed* data, size_t n) override {
    gathered_.resize(static_cast<size_t>(comm_.size()) * n);
    comm::CollectiveOptions o;
    o.tag = "state sync (exact sum)";
    comm_.allgather(data, gathered_.data(), n * sizeof(Fixed), DType::kU8, o);
    for (size_t i = 0; i < n; ++i) {
      Fixed s = 0;
      for (int r = 0; r < comm_.size(); ++r) s += gathered_[static_cast<size_t>(r) * n + i];
      data[i] = s;
    }
  }
  int size() const override { return comm_.size(); }

 private:
  comm::Communicator& comm_;
  std::vector<Fixed> gathered_;
};

}  // namespace slim::rank_reduction
