#include "image/pipeline.hpp"

#include <cstring>
#include <utility>

namespace aplspawn::image {

BlockPipeline::BlockPipeline(Consumer consume, std::size_t block_size, std::size_t blocks)
    : consume_(std::move(consume)), block_size_(block_size), blocks_(blocks) {
    for (std::size_t i = 0; i < blocks; ++i) {
        blocks_[i].data = std::make_unique_for_overwrite<unsigned char[]>(block_size);
        free_.push_back(i);
    }
    worker_ = std::thread([this] { run(); });
}

BlockPipeline::~BlockPipeline() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
}

void BlockPipeline::rethrow() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void BlockPipeline::submit_current() {
    if (current_ < 0) return;
    full_.push_back(static_cast<std::size_t>(current_));
    current_ = -1;
    cv_.notify_all();
}

void BlockPipeline::push(std::span<const unsigned char> data) {
    std::unique_lock lock(mu_);
    rethrow();
    while (!data.empty()) {
        if (current_ < 0) {
            cv_.wait(lock, [&] { return !free_.empty() || error_; });
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
    submit_current();
    cv_.wait(lock, [&] { return (full_.empty() && !busy_) || error_; });
    rethrow();
}

void BlockPipeline::run() {
    std::unique_lock lock(mu_);
    while (true) {
        cv_.wait(lock, [&] { return stop_ || !full_.empty(); });
        if (stop_) return;
        std::size_t i = full_.front();
        full_.pop_front();
        busy_ = true;
        lock.unlock();
        std::exception_ptr err;
        try {
            consume_({blocks_[i].data.get(), blocks_[i].used});
        } catch (...) {
            err = std::current_exception();
        }
        lock.lock();
        busy_ = false;
        free_.push_back(i);
        if (err) {
            // Nothing after a failure is consumed: drop what is queued.
            error_ = err;
            while (!full_.empty()) {
                free_.push_back(full_.front());
                full_.pop_front();
            }
        }
        cv_.notify_all();
    }
}

}  // namespace aplspawn::image
