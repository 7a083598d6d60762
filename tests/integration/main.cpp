// Integration tests change links, addresses, nftables, mounts and loop devices: they only run
// inside the throwaway namespaces that tests/lib/run-in-ns makes (ctest does this for every test
// case). Run by hand: tests/lib/run-in-ns build/tests/integration_tests "[net]"
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>

int main(int argc, char** argv) {
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--list", 6) == 0) listing = true;
    const char* in_ns = std::getenv("APLSPAWN_IN_TEST_NS");
    if (!listing && !(in_ns && std::strcmp(in_ns, "1") == 0)) {
        std::cerr << "integration_tests: refusing to run outside throwaway namespaces; "
                     "use tests/lib/run-in-ns (ctest does)\n";
        return 2;
    }
    return Catch::Session().run(argc, argv);
}
