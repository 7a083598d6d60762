// fleet::run_ordered with workers that throw: the process survives, every index is reported in
// order, and a thrown error becomes that index's own result (or is rethrown on the calling
// thread when the caller gives no `failed`).
#include "aplspawn/fleet/outcome.hpp"
#include "aplspawn/fleet/parallel.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace aplspawn;

TEST_CASE("run_ordered: a worker that throws becomes a failed result of its own index", "[fleet]") {
    std::vector<std::size_t> order;
    std::vector<std::string> failures;
    fleet::run_ordered<fleet::Outcome>(
        6, 3,
        [&](std::size_t i) -> fleet::Outcome {
            std::this_thread::sleep_for(std::chrono::milliseconds(5 * (6 - static_cast<int>(i))));
            if (i == 1) throw Error("exec ssh: ssh is not installed");
            if (i == 4) throw std::runtime_error("vector::at");
            if (i == 5) throw 42;
            return {"c" + std::to_string(i), true, {}};
        },
        [&](std::size_t i, fleet::Outcome& o) {
            order.push_back(i);
            if (!o.ok) failures.push_back(o.lines.at(0).text);
            else CHECK(o.name == "c" + std::to_string(i));
        },
        [&](std::size_t i, const Error& e) { return fleet::failed_outcome("c" + std::to_string(i), e); });
    CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
    CHECK(failures == std::vector<std::string>{"c1: exec ssh: ssh is not installed",
                                               "c4: internal error: vector::at",
                                               "c5: internal error: unknown exception"});
}

TEST_CASE("run_ordered: without `failed`, a worker's error is rethrown on the calling thread", "[fleet]") {
    std::atomic<int> started{0};
    std::vector<std::size_t> reported;
    auto run = [&] {
        fleet::run_ordered<int>(
            64, 2,
            [&](std::size_t i) -> int {
                ++started;
                if (i == 2) throw Error("worker 2 failed");
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                return static_cast<int>(i);
            },
            [&](std::size_t i, int&) { reported.push_back(i); });
    };
    CHECK_THROWS_WITH(run(), "worker 2 failed");
    CHECK(reported == std::vector<std::size_t>{0, 1});
    // The workers stopped taking new work once the error was seen: not all 64 ran.
    CHECK(started.load() < 64);
}

TEST_CASE("run_ordered: a report that throws stops the pool without terminating", "[fleet]") {
    std::atomic<int> started{0};
    auto run = [&] {
        fleet::run_ordered<int>(
            64, 2,
            [&](std::size_t i) {
                ++started;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                return static_cast<int>(i);
            },
            [&](std::size_t i, int&) {
                if (i == 1) throw Error("report failed");
            });
    };
    CHECK_THROWS_WITH(run(), "report failed");
    CHECK(started.load() < 64);
}
