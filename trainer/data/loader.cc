// BatchLoader: ordered batches from a pool of decode workers.
#include "trainer/data/loader.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "trainer/core/threads.h"

namespace slim::data {

BatchLoader::BatchLoader(const Dataset& data, BatchPlan plan, LoaderOptions opts)
    : data_(data), plan_(std::move(plan)), depth_(std::max({1, opts.depth, opts.workers})) {
  const int n = std::max(1, opts.workers);
  for (int w = 0; w < n; ++w) workers_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void BatchLoader::work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || plan_done_ || planned_ < handed_ + depth_; });
    if (stop_ || plan_done_) return;
    Slot slot;
    if (!spare_.empty()) {
      slot.batch = std::move(spare_.back());
      spare_.pop_back();
    }
    const int64_t seq = planned_++;
    bool have = false;
    try {
      have = plan_(slot.batch.indices, slot.batch.epoch);
    } catch (...) {
      slot.error = std::current_exception();
    }
    if (!have && !slot.error) {
      plan_done_ = true;
      --planned_;
      cv_.notify_all();
      return;
    }
    if (!slot.error) {
      lock.unlock();
      try {
        fillBatch(data_, slot.batch.indices, slot.batch.epoch, slot.batch.images,
                  slot.batch.labels);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
    }
    if (slot.error) plan_done_ = true;  // nothing after a failed batch is handed out
    ready_.emplace(seq, std::move(slot));
    cv_.notify_all();
  }
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto t0 = std::chrono::steady_clock::now();
  bool waited = false;
  while (!ready_.count(handed_)) {
    if (plan_done_ && handed_ >= planned_) return false;
    waited = true;
    cv_.wait(lock);
  }
  if (waited)
    wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto node = ready_.extract(handed_);
  ++handed_;
  Slot& slot = node.mapped();
  if (slot.error) {
    cv_.notify_all();
    std::rethrow_exception(slot.error);
  }
  std::swap(out, slot.batch);
  if (slot.batch.images.defined()) spare_.push_back(std::move(slot.batch));
  cv_.notify_all();
  return true;
}

int decodeWorkers(const Dataset& d, int64_t configured) {
  if (configured > 0) return static_cast<int>(configured);
  if (!d.source || !d.source->expensive()) return 1;
  return std::max(1, spareCores());
}

}  // namespace slim::data
