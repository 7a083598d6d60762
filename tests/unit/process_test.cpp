// sys::run: argv exec, exit codes, exec errors, timeouts, stdin.
#include "aplspawn/sys/process.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

TEST_CASE("sys::run reports exec failures and exit codes", "[sys]") {
    CHECK_THROWS_WITH(sys::run({"/nonexistent/program"}),
                      Catch::Contains("exec /nonexistent/program"));
    auto r = sys::run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(r.exit_code == 3);
    CHECK(r.out == "out\n");
    CHECK(r.err == "err\n");
    sys::RunOptions o;
    o.timeout = std::chrono::milliseconds(200);
    auto slow = sys::run({"sleep", "10"}, o);
    CHECK(slow.timed_out);
    CHECK_FALSE(slow.ok());
    o = {};
    o.input = "hello";
    CHECK(sys::run({"cat"}, o).out == "hello");
}
