// Work on every container at once, reported in fleet order: work(i) runs on up to `workers`
// threads; report(i, result) runs on the calling thread in index order, each as soon as it and
// every one before it are done. So output stays in name order while the work is parallel.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace aplspawn::fleet {

template <class R>
void run_ordered(std::size_t n, std::size_t workers, const std::function<R(std::size_t)>& work,
                 const std::function<void(std::size_t, R&)>& report) {
    std::vector<std::optional<R>> results(n);
    std::mutex m;
    std::condition_variable cv;
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) {
            R r = work(i);  // work must not throw: it turns failures into its result
            {
                std::lock_guard lock(m);
                results[i] = std::move(r);
            }
            cv.notify_all();
        }
    };
    std::vector<std::jthread> threads;
    workers = std::clamp<std::size_t>(workers, 1, std::max<std::size_t>(n, 1));
    for (std::size_t t = 0; t < workers; ++t) threads.emplace_back(worker);
    for (std::size_t i = 0; i < n; ++i) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return results[i].has_value(); });
        R r = std::move(*results[i]);
        lock.unlock();
        report(i, r);
    }
}

}  // namespace aplspawn::fleet
