// The tests' own HTTP server (tests/support/http_server.py) on 127.0.0.1 inside the test's
// network namespace: serves a directory, and on request drops connections, ignores Range, fails
// the first requests, or is slow. Every request it answered is in its JSON log.
#pragma once

#include "aplspawn/sys/process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace aplspawn::testing {

class HttpServer {
public:
    // extra: the script's options, e.g. {"--drop-after", "100000"}. Waits (at most 10 s) until
    // it listens.
    HttpServer(const std::filesystem::path& root, const std::filesystem::path& scratch,
               std::vector<std::string> extra = {})
        : port_file_(scratch / "http.port"), log_(scratch / "http.log") {
        std::filesystem::remove(port_file_);
        std::filesystem::remove(log_);
        std::vector<std::string> argv{"python3", std::string(APLSPAWN_TEST_DIR) + "/support/http_server.py",
                                      "--root", root.string(), "--port-file", port_file_.string(),
                                      "--log", log_.string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        sys::SpawnOptions o;
        o.log_file = scratch / "http.stderr";
        child_ = sys::spawn(argv, o);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!std::filesystem::exists(port_file_)) {
            if (child_.poll()) throw std::runtime_error("http_server.py exited at start");
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("http_server.py did not listen within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        std::ifstream(port_file_) >> port_;
    }

    int port() const { return port_; }
    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string url(const std::string& path) const { return base() + "/" + path; }

    // The requests answered so far, oldest first. Waits (at most 5 s) for the answers still in
    // flight: the server logs a request when its last byte is sent, which may be just after the
    // client has it.
    std::vector<nlohmann::json> requests() const {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (true) {
            std::vector<nlohmann::json> done;
            std::size_t started = 0;
            std::ifstream in(log_);
            for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                auto j = nlohmann::json::parse(line);
                if (j.contains("event")) ++started;
                else done.push_back(std::move(j));
            }
            if (done.size() >= started || std::chrono::steady_clock::now() > deadline) return done;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    std::vector<nlohmann::json> requests(const std::string& method, const std::string& path) const {
        std::vector<nlohmann::json> out;
        for (auto& r : requests())
            if (r["method"] == method && r["path"] == path) out.push_back(r);
        return out;
    }

private:
    std::filesystem::path port_file_, log_;
    sys::Child child_;  // killed when the server object dies
    int port_ = 0;
};

// A TCP port on 127.0.0.1 where nothing listens (connections are refused).
inline int refused_port() {
    // Port 9 (discard) is never served inside a test's fresh network namespace.
    return 9;
}

}  // namespace aplspawn::testing
