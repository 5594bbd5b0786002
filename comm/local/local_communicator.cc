// World-size-1 collectives: nothing to exchange.
#include "comm/local/local_communicator.h"

#include <cstring>

#include "comm/detail.h"
#include "trainer/core/log.h"

namespace slim::comm {

void LocalCommunicator::allreduce(void*, size_t, DType, ReduceOp,
                                  const CollectiveOptions&) {}

std::unique_ptr<Work> LocalCommunicator::iallreduce(void*, size_t, DType,
                                                    ReduceOp,
                                                    const CollectiveOptions&) {
  return std::make_unique<detail::CompletedWork>();
}

void LocalCommunicator::broadcast(void*, size_t, DType, int root,
                                  const CollectiveOptions& opts) {
  if (root != 0)
    throw CommError(detail::str("rank 0: ", describeOp("broadcast", opts.tag),
                                ": root ", root, " is outside world size 1"),
                    0, "broadcast");
}

void LocalCommunicator::allgather(const void* send, void* recv, size_t count,
                                  DType dtype, const CollectiveOptions&) {
  if (count > 0 && send != recv)
    std::memmove(recv, send, count * dtypeSize(dtype));
}

void LocalCommunicator::abort(const std::string& reason, int /*exit_code*/) noexcept {
  try {
    log::error("communicator aborted: ", reason);
  } catch (...) {
  }
}

}  // namespace slim::comm
