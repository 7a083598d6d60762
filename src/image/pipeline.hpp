// A second thread for the work that can run beside the network: the receiving thread copies
// each block it gets into one of a few large buffers and goes back to receiving, while the
// worker hashes (and decompresses) the buffers in order. An exception in the worker comes back
// to the receiving thread at its next push() or drain().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace aplspawn::image {

class BlockPipeline {
public:
    using Consumer = std::function<void(std::span<const unsigned char>)>;

    explicit BlockPipeline(Consumer consume, std::size_t block_size = 4u << 20, std::size_t blocks = 8);
    ~BlockPipeline();
    BlockPipeline(const BlockPipeline&) = delete;
    BlockPipeline& operator=(const BlockPipeline&) = delete;

    // Copies data into the pipeline (waits while every buffer is in use).
    void push(std::span<const unsigned char> data);
    // Hands over what is buffered and waits until the worker has consumed everything.
    void drain();

private:
    struct Block {
        std::unique_ptr<unsigned char[]> data;
        std::size_t used = 0;
    };
    void run();
    void submit_current();  // with mu_ held
    void rethrow();         // with mu_ held

    Consumer consume_;
    std::size_t block_size_;
    std::vector<Block> blocks_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::size_t> free_, full_;
    std::ptrdiff_t current_ = -1;  // the block being filled by push()
    bool busy_ = false;            // the worker is consuming a block
    bool stop_ = false;
    std::exception_ptr error_;
    std::thread worker_;
};

}  // namespace aplspawn::image
