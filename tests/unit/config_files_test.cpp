// The config parser and validator, driven by a table of files: every file under data/config/good
// loads; every file under data/config/bad is refused with exit code 2 and a message naming the
// file, the line and the key its header declares:
//   # expect-key: bridge.name
//   # expect-line: 4
//   # expect-message: longer than 15 bytes
// (A file that must stay empty keeps its header in NAME.expect beside it.)
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using namespace aplspawn;

namespace {

const fs::path kData = fs::path(APLSPAWN_TEST_DATA) / "config";

std::map<std::string, std::string> read_expectations(const fs::path& file) {
    fs::path sidecar = fs::path(file).replace_extension(".expect");
    std::ifstream in(fs::exists(sidecar) ? sidecar : file);
    std::map<std::string, std::string> out;
    std::string line;
    while (std::getline(in, line) && line.rfind("# expect-", 0) == 0) {
        auto colon = line.find(':');
        std::string key = line.substr(9, colon - 9);
        std::string value = colon + 1 < line.size() ? line.substr(colon + 2) : "";
        out[key] = value;
    }
    return out;
}

std::vector<fs::path> files_in(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".yaml") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("every good config file loads", "[config]") {
    auto files = files_in(kData / "good");
    REQUIRE(files.size() >= 2);
    for (const auto& f : files) {
        INFO(f.string());
        CHECK_NOTHROW(config::load(f));
    }
}

TEST_CASE("every bad config file is refused naming file, line and key", "[config]") {
    auto files = files_in(kData / "bad");
    REQUIRE(files.size() >= 40);
    for (const auto& f : files) {
        auto expect = read_expectations(f);
        INFO(f.filename().string());
        REQUIRE(expect.count("message"));
        std::string message;
        Exit code = Exit::ok;
        try {
            config::load(f);
        } catch (const Error& e) {
            message = e.message();
            code = e.exit_code();
        }
        INFO("message: " << message);
        CHECK(code == Exit::usage);
        // file (as shown: relative to the cwd or absolute), then :LINE when the file has lines
        CHECK(message.find(f.filename().string()) != std::string::npos);
        if (!expect["line"].empty())
            CHECK(message.find(f.filename().string() + ":" + expect["line"] + ": ") !=
                  std::string::npos);
        if (!expect["key"].empty())
            CHECK(message.find(": " + expect["key"] + ": ") != std::string::npos);
        CHECK(message.find(expect["message"]) != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);  // one line
    }
}

TEST_CASE("a config file that does not exist is a usage error naming it", "[config]") {
    try {
        config::load(kData / "no-such-file.yaml");
        FAIL("loaded a file that does not exist");
    } catch (const Error& e) {
        CHECK(e.exit_code() == Exit::usage);
        CHECK_THAT(e.message(), Catch::Contains("no-such-file.yaml") &&
                                    Catch::Contains("No such file or directory"));
    }
}
