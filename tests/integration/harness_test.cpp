// The harness itself: every test case runs in namespaces of its own.
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace aplspawn;

TEST_CASE("integration tests run in throwaway network and mount namespaces", "[harness]") {
    // Only loopback exists in a fresh network namespace.
    auto links = sys::run_checked({"ip", "-o", "link", "show"});
    CHECK(links.out.find("lo:") != std::string::npos);
    CHECK(links.out.find("eth0") == std::string::npos);
    // Our pid namespace: we are a low pid under the namespace's bash.
    CHECK(::getpid() < 100);
    // The private tmpfs for test files exists.
    struct stat st;
    CHECK(::stat("/run/aplspawn-test", &st) == 0);
}
