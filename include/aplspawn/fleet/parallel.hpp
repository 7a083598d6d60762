// Work on every container at once, reported in fleet order: work(i) runs on up to `workers`
// threads; report(i, result) runs on the calling thread in index order, each as soon as it and
// every one before it are done. So output stays in name order while the work is parallel.
//
// A worker that throws does not take the process down (an exception leaving a thread is
// std::terminate): the pool catches it on the worker's thread and, on the calling thread, turns
// it into that index's result with failed(i, error), reported in its place like any other, so
// one container's failure is a FAIL line of its own. Without `failed`, the first such error is
// rethrown on the calling thread (after the workers stopped taking new work and were joined).
#pragma once

#include "aplspawn/error.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace aplspawn::fleet {

// What a worker threw, as an Error: an Error as it is, anything else as an internal error.
inline Error worker_error(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const Error& err) {
        return err;
    } catch (const std::exception& err) {
        return Error(std::string("internal error: ") + err.what());
    } catch (...) {
        return Error("internal error: unknown exception");
    }
}

template <class R>
void run_ordered(std::size_t n, std::size_t workers, const std::function<R(std::size_t)>& work,
                 const std::function<void(std::size_t, R&)>& report,
                 const std::function<R(std::size_t, const Error&)>& failed = {}) {
    using Slot = std::variant<std::monostate, R, std::exception_ptr>;
    std::vector<Slot> results(n);
    std::mutex m;
    std::condition_variable cv;
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) {
            Slot s;
            try {
                s.template emplace<R>(work(i));
            } catch (...) {
                s.template emplace<std::exception_ptr>(std::current_exception());
            }
            {
                std::lock_guard lock(m);
                results[i] = std::move(s);
            }
            cv.notify_all();
        }
    };
    std::vector<std::jthread> threads;
    // Declared after threads: runs first when leaving (also by an exception), so the workers
    // take no new index and the jthreads' joins do not wait for the rest of the fleet.
    struct StopGuard {
        std::atomic<std::size_t>& next;
        std::size_t n;
        ~StopGuard() { next.store(n); }
    };
    workers = std::clamp<std::size_t>(workers, 1, std::max<std::size_t>(n, 1));
    for (std::size_t t = 0; t < workers; ++t) threads.emplace_back(worker);
    StopGuard stop{next, n};
    for (std::size_t i = 0; i < n; ++i) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return !std::holds_alternative<std::monostate>(results[i]); });
        Slot s = std::move(results[i]);
        lock.unlock();
        if (auto* e = std::get_if<std::exception_ptr>(&s)) {
            Error err = worker_error(*e);
            if (!failed) throw err;
            R r = failed(i, err);
            report(i, r);
        } else {
            report(i, std::get<R>(s));
        }
    }
}

}  // namespace aplspawn::fleet
