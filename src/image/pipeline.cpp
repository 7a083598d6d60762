#include "image/pipeline.hpp"

#include "aplspawn/error.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace aplspawn::image {

BlockPipeline::BlockPipeline(std::vector<Consumer> consumers, std::size_t block_size, std::size_t blocks)
    : consumers_(std::move(consumers)), block_size_(block_size), blocks_(blocks),
      next_(consumers_.size(), 0) {
    for (std::size_t i = 0; i < blocks; ++i) {
        blocks_[i].data = std::make_unique_for_overwrite<unsigned char[]>(block_size);
        free_.push_back(i);
    }
    workers_.reserve(consumers_.size());
    try {
        for (std::size_t c = 0; c < consumers_.size(); ++c) workers_.emplace_back([this, c] { run(c); });
    } catch (...) {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) w.join();
        throw;
    }
}

BlockPipeline::~BlockPipeline() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
}

void BlockPipeline::rethrow() {
    if (!failed_) return;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    throw Error("download pipeline: stopped after an earlier error");
}

void BlockPipeline::submit_current() {
    if (current_ < 0) return;
    queue_.push_back(static_cast<std::size_t>(current_));
    current_ = -1;
    cv_.notify_all();
}

void BlockPipeline::retire() {
    while (!queue_.empty() &&
           std::all_of(next_.begin(), next_.end(), [&](std::uint64_t n) { return n > head_; })) {
        free_.push_back(queue_.front());
        queue_.pop_front();
        ++head_;
    }
}

void BlockPipeline::push(std::span<const unsigned char> data) {
    std::unique_lock lock(mu_);
    rethrow();
    while (!data.empty()) {
        if (current_ < 0) {
            cv_.wait(lock, [&] { return !free_.empty() || failed_; });
            rethrow();
            current_ = static_cast<std::ptrdiff_t>(free_.front());
            free_.pop_front();
            blocks_[static_cast<std::size_t>(current_)].used = 0;
        }
        Block& b = blocks_[static_cast<std::size_t>(current_)];
        std::size_t n = std::min(data.size(), block_size_ - b.used);
        std::memcpy(b.data.get() + b.used, data.data(), n);
        b.used += n;
        data = data.subspan(n);
        if (b.used == block_size_) submit_current();
    }
}

void BlockPipeline::drain() {
    std::unique_lock lock(mu_);
    rethrow();
    submit_current();
    cv_.wait(lock, [&] { return queue_.empty() || failed_; });
    rethrow();
}

void BlockPipeline::run(std::size_t c) {
    std::unique_lock lock(mu_);
    while (true) {
        cv_.wait(lock, [&] { return stop_ || (!failed_ && next_[c] < head_ + queue_.size()); });
        if (stop_) return;
        const Block& b = blocks_[queue_[static_cast<std::size_t>(next_[c] - head_)]];
        lock.unlock();
        std::exception_ptr err;
        try {
            consumers_[c]({b.data.get(), b.used});
        } catch (...) {
            err = std::current_exception();
        }
        lock.lock();
        ++next_[c];
        if (err && !failed_) {
            // Nothing after a failure is consumed; the receiving thread hears of it next.
            failed_ = true;
            error_ = err;
        }
        retire();
        cv_.notify_all();
    }
}

}  // namespace aplspawn::image
