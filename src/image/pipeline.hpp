// Threads for the work that can run beside the network: the receiving thread copies each block
// it gets into one of a few large buffers and goes back to receiving, while each consumer (on
// its own thread: one writes the file, one hashes and decompresses) takes the buffers in order.
// A buffer is reused once every consumer is done with it. An exception in a consumer stops them
// all and comes back to the receiving thread at its next push() or drain().
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

    explicit BlockPipeline(std::vector<Consumer> consumers, std::size_t block_size = 4u << 20,
                           std::size_t blocks = 8);
    explicit BlockPipeline(Consumer consume, std::size_t block_size = 4u << 20, std::size_t blocks = 8)
        : BlockPipeline(std::vector<Consumer>{std::move(consume)}, block_size, blocks) {}
    ~BlockPipeline();
    BlockPipeline(const BlockPipeline&) = delete;
    BlockPipeline& operator=(const BlockPipeline&) = delete;

    // Copies data into the pipeline (waits while every buffer is in use).
    void push(std::span<const unsigned char> data);
    // Hands over what is buffered and waits until every consumer has consumed everything.
    void drain();

private:
    struct Block {
        std::unique_ptr<unsigned char[]> data;
        std::size_t used = 0;
    };
    void run(std::size_t consumer);
    void submit_current();  // with mu_ held
    void rethrow();         // with mu_ held
    void retire();          // with mu_ held: frees the blocks every consumer is done with

    std::vector<Consumer> consumers_;
    std::size_t block_size_;
    std::vector<Block> blocks_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::size_t> free_;
    std::deque<std::size_t> queue_;   // submitted blocks, oldest first
    std::uint64_t head_ = 0;          // sequence number of queue_.front()
    std::vector<std::uint64_t> next_; // per consumer: sequence number of its next block
    std::ptrdiff_t current_ = -1;     // the block being filled by push()
    bool stop_ = false;
    bool failed_ = false;             // a consumer threw: nothing more is consumed
    std::exception_ptr error_;        // what it threw, until handed to the receiving thread
    std::vector<std::thread> workers_;
};

}  // namespace aplspawn::image
