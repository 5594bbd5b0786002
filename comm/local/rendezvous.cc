// Rendezvous protocol (see rendezvous.h): deposit, wait for all, consume
// outside the lock, and the last rank to leave frees the slot.
#include "comm/local/rendezvous.h"

#include "comm/detail.h"

#include <cstring>
#include <sstream>

namespace slim::comm::detail {
namespace {

std::string sigStr(const OpSignature& s) {
  std::ostringstream os;
  os << describeOp(s.op, s.tag) << " [count " << s.count << ", "
     << dtypeName(s.dtype);
  if (s.op == "broadcast") os << ", root " << s.root;
  os << "]";
  return os.str();
}

bool sameSignature(const OpSignature& a, const OpSignature& b) {
  return a.op == b.op && a.count == b.count && a.dtype == b.dtype &&
         a.root == b.root;
}

}  // namespace

void Rendezvous::failLocked(int rank, const OpSignature& sig,
                            const std::string& why) {
  std::string msg =
      str("rank ", rank, ": ", describeOp(sig.op, sig.tag), " failed: ", why);
  if (!aborted_) {
    aborted_ = true;
    abort_rank_ = rank;
    abort_reason_ = msg;
    cv_.notify_all();
  }
  throw CommError(msg, rank, sig.op);
}

void Rendezvous::exchange(
    int rank, uint64_t seq, const OpSignature& sig, const void* data,
    size_t bytes, std::chrono::steady_clock::time_point deadline,
    std::chrono::milliseconds timeout,
    const std::function<void(const std::vector<std::vector<unsigned char>>&)>&
        consume) {
  std::unique_lock<std::mutex> lock(mu_);
  if (aborted_)
    throw CommError(str("rank ", rank, ": ", describeOp(sig.op, sig.tag),
                        ": group aborted by rank ", abort_rank_, ": ",
                        abort_reason_),
                    rank, sig.op);
  Slot& slot = slots_[seq];
  if (slot.first_rank < 0) {
    slot.sig = sig;
    slot.first_rank = rank;
    slot.inputs.resize(size_);
    slot.arrived.assign(size_, false);
  } else if (!sameSignature(slot.sig, sig)) {
    failLocked(rank, sig,
               str("collective #", seq, " mismatch: rank ", rank, " called ",
                   sigStr(sig), " but rank ", slot.first_rank, " called ",
                   sigStr(slot.sig)));
  }
  if (slot.arrived[rank])
    failLocked(rank, sig, str("rank entered collective #", seq, " twice"));
  if (bytes > 0) {
    slot.inputs[rank].resize(bytes);
    std::memcpy(slot.inputs[rank].data(), data, bytes);
  }
  slot.arrived[rank] = true;
  if (++slot.n_arrived == size_) cv_.notify_all();

  bool complete = cv_.wait_until(lock, deadline, [&] {
    return aborted_ || slot.n_arrived == size_;
  });
  if (aborted_ && slot.n_arrived != size_)
    throw CommError(str("rank ", rank, ": ", describeOp(sig.op, sig.tag),
                        ": group aborted by rank ", abort_rank_, ": ",
                        abort_reason_),
                    rank, sig.op);
  if (!complete) {
    std::ostringstream missing;
    const char* sep = "";
    for (int r = 0; r < size_; ++r)
      if (!slot.arrived[r]) {
        missing << sep << r;
        sep = ", ";
      }
    failLocked(rank, sig,
               str("timed out after ", timeout.count(),
                   " ms; ranks that never arrived: [", missing.str(),
                   "] (world size ", size_, ")"));
  }
  lock.unlock();
  // Inputs are immutable now; consume them concurrently with other ranks.
  std::exception_ptr err;
  try {
    consume(slot.inputs);
  } catch (...) {
    err = std::current_exception();
  }
  lock.lock();
  if (++slot.n_left == size_) slots_.erase(seq);
  if (err) std::rethrow_exception(err);
}

void Rendezvous::abort(int rank, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (aborted_) return;
  aborted_ = true;
  abort_rank_ = rank;
  abort_reason_ = reason;
  cv_.notify_all();
}

}  // namespace slim::comm::detail
