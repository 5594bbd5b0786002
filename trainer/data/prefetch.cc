// Prefetcher: a one-slot producer/consumer around sampler + fillBatch.
//
// Protocol (all flags under mu_): the worker waits until the slot is empty
// (!ready_), marks busy_, draws and fills outside the lock into its own
// buffers, then publishes them into the slot (ready_). next() waits for
// ready_, swaps the slot out and clears ready_. seek() waits until the worker
// is not busy_, so the sampler is never touched by two threads at once.
#include "trainer/data/prefetch.h"

#include <utility>

namespace slim::data {

Prefetcher::Prefetcher(const Dataset& data, ShardedSampler sampler)
    : data_(data), sampler_(std::move(sampler)) {
  handed_ = sampler_.position();
  worker_ = std::thread([this] { run(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Prefetcher::run() {
  Tensor images, labels;
  std::vector<int64_t> indices;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !ready_; });
    if (stop_) return;
    busy_ = true;
    lock.unlock();
    std::exception_ptr error;
    SamplerPosition after;
    try {
      sampler_.next(indices);
      fillBatch(data_, indices, images, labels);
      after = sampler_.position();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    std::swap(images_, images);
    std::swap(labels_, labels);
    std::swap(indices_, indices);
    slot_after_ = after;
    error_ = error;
    ready_ = true;
    cv_.notify_all();
  }
}

void Prefetcher::next(Tensor& images, Tensor& labels, std::vector<int64_t>* indices) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return ready_; });
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);
    ready_ = false;
    cv_.notify_all();
    std::rethrow_exception(e);
  }
  std::swap(images, images_);
  std::swap(labels, labels_);
  if (indices) *indices = indices_;
  handed_ = slot_after_;
  ready_ = false;
  cv_.notify_all();
}

SamplerPosition Prefetcher::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handed_;
}

void Prefetcher::seek(int64_t epoch, int64_t sample_offset) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !busy_; });
  sampler_.seek(epoch, sample_offset);  // throws ConfigError when out of range
  handed_ = sampler_.position();
  ready_ = false;
  error_ = nullptr;
  cv_.notify_all();
}

}  // namespace slim::data
