// ThreadCommunicator: one rank of a ThreadGroup. Each call takes the next
// sequence number (so collectives match by issue order, as in MPI), deposits
// its input in the rendezvous and computes its own result from all inputs.
// Reductions run in rank order, so every rank gets bit-identical results.
#include "comm/local/thread_group.h"

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include "comm/detail.h"
#include "comm/local/rendezvous.h"

namespace slim::comm {
namespace {

using Inputs = std::vector<std::vector<unsigned char>>;
using Clock = std::chrono::steady_clock;

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<detail::Rendezvous> rv, int rank, int size,
                     std::chrono::milliseconds timeout)
      : Communicator(timeout), rv_(std::move(rv)), rank_(rank), size_(size) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "threads"; }

  void allreduce(void* buf, size_t count, DType dtype, ReduceOp op,
                 const CollectiveOptions& opts) override {
    if (size_ == 1) return;
    runAllreduce(next_seq_++, buf, count, dtype, op, opts);
  }

  std::unique_ptr<Work> iallreduce(void* buf, size_t count, DType dtype,
                                   ReduceOp op,
                                   const CollectiveOptions& opts) override {
    if (size_ == 1) return std::make_unique<detail::CompletedWork>();
    // The sequence number is taken now: issue order defines matching even
    // though the exchange runs on another thread.
    uint64_t seq = next_seq_++;
    auto fut = std::async(std::launch::async, [this, seq, buf, count, dtype, op,
                                               opts] {
      runAllreduce(seq, buf, count, dtype, op, opts);
    });
    return std::make_unique<FutureWork>(std::move(fut));
  }

  void broadcast(void* buf, size_t count, DType dtype, int root,
                 const CollectiveOptions& opts) override {
    if (root < 0 || root >= size_)
      throw CommError(detail::str("rank ", rank_, ": ",
                                  describeOp("broadcast", opts.tag), ": root ",
                                  root, " is outside world size ", size_),
                      rank_, "broadcast");
    if (size_ == 1) return;
    size_t bytes = count * dtypeSize(dtype);
    detail::OpSignature sig{"broadcast", opts.tag, count, dtype, root};
    run(next_seq_++, sig, opts, buf, rank_ == root ? bytes : 0,
        [&](const Inputs& in) {
          if (rank_ != root && bytes > 0)
            std::memcpy(buf, in[root].data(), bytes);
        });
  }

  void allgather(const void* send, void* recv, size_t count, DType dtype,
                 const CollectiveOptions& opts) override {
    size_t bytes = count * dtypeSize(dtype);
    if (size_ == 1) {
      if (bytes > 0 && send != recv) std::memmove(recv, send, bytes);
      return;
    }
    detail::OpSignature sig{"allgather", opts.tag, count, dtype, 0};
    run(next_seq_++, sig, opts, send, bytes, [&](const Inputs& in) {
      for (int r = 0; r < size_ && bytes > 0; ++r)
        std::memcpy(static_cast<unsigned char*>(recv) + r * bytes,
                    in[r].data(), bytes);
    });
  }

  void barrier(const CollectiveOptions& opts) override {
    if (size_ == 1) return;
    detail::OpSignature sig{"barrier", opts.tag, 0, DType::kU8, 0};
    run(next_seq_++, sig, opts, nullptr, 0, [](const Inputs&) {});
  }

  void abort(const std::string& reason, int /*exit_code*/ = 1) noexcept override {
    try {
      rv_->abort(rank_, reason);
    } catch (...) {
    }
  }

 private:
  class FutureWork : public Work {
   public:
    explicit FutureWork(std::future<void> f) : f_(std::move(f)) {}
    bool test() override {
      if (!f_.valid()) return true;  // already waited
      return f_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    void wait() override {
      if (f_.valid()) f_.get();  // rethrows the exchange's CommError
    }

   private:
    std::future<void> f_;
  };

  void runAllreduce(uint64_t seq, void* buf, size_t count, DType dtype,
                    ReduceOp op, const CollectiveOptions& opts) {
    size_t bytes = count * dtypeSize(dtype);
    detail::OpSignature sig{std::string("allreduce(") + reduceOpName(op) + ")",
                            opts.tag, count, dtype, 0};
    run(seq, sig, opts, buf, bytes, [&](const Inputs& in) {
      if (bytes == 0) return;
      std::memcpy(buf, in[0].data(), bytes);
      for (int r = 1; r < size_; ++r)
        detail::reduceInto(buf, in[r].data(), count, dtype, op);
    });
  }

  void run(uint64_t seq, const detail::OpSignature& sig,
           const CollectiveOptions& opts, const void* data, size_t bytes,
           const std::function<void(const Inputs&)>& consume) {
    if (opts.test_delay.count() > 0) std::this_thread::sleep_for(opts.test_delay);
    auto timeout = timeoutOf(opts);
    rv_->exchange(rank_, seq, sig, data, bytes, Clock::now() + timeout, timeout,
                  consume);
  }

  std::shared_ptr<detail::Rendezvous> rv_;
  int rank_;
  int size_;
  std::atomic<uint64_t> next_seq_{0};
};

}  // namespace

ThreadGroup::ThreadGroup(int size, std::chrono::milliseconds timeout)
    : size_(size), timeout_(timeout) {
  SLIM_ENFORCE_GE(size, 1, "ThreadGroup needs at least one rank");
  rendezvous_ = std::make_shared<detail::Rendezvous>(size);
}

ThreadGroup::~ThreadGroup() = default;

std::unique_ptr<Communicator> ThreadGroup::communicator(int rank) {
  SLIM_ENFORCE(rank >= 0 && rank < size_, "rank ", rank,
               " is outside the thread group of size ", size_);
  return std::make_unique<ThreadCommunicator>(rendezvous_, rank, size_,
                                              timeout_);
}

void ThreadGroup::abort(int rank, const std::string& reason) noexcept {
  try {
    rendezvous_->abort(rank, reason);
  } catch (...) {
  }
}

}  // namespace slim::comm
