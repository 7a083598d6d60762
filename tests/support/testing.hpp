// Helpers shared by integration tests: temporary directories, a base config whose directories
// all live in one temporary directory, running the aplspawn binary.
#pragma once

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::testing {

namespace fs = std::filesystem;

// A fresh directory, removed (recursively, not crossing into mounts left behind: the test's
// namespace takes those down) when the object dies.
class TempDir {
public:
    TempDir() {
        fs::path base = fs::exists("/run/aplspawn-test") ? "/run/aplspawn-test" : "/tmp";
        std::string tmpl = (base / "t.XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& p) const { return path_ / p; }

private:
    fs::path path_;
};

inline void write_file(const fs::path& p, std::string_view text) {
    fs::create_directories(p.parent_path());
    sys::write_file_atomic(p, text, 0644);
}

// A complete config for a fleet whose every directory is under `dir`: bridge apltest0,
// 10.77.0.1/24, containers from 10.77.0.10. `extra` is appended to cntCommon.
inline std::string base_config(const fs::path& dir, int amount = 2, std::string_view extra = "") {
    return fmt::format(R"(bridge:
  name: apltest0
  address: 10.77.0.1
  netPrefix: 24
ipt:
  chainName: APLTEST
path:
  workingDirectory: {0}/work
image:
  os: debian
  release: bookworm
  repo: {0}/repo
cntVariables:
  userName: test
  sshPublicKeyPath: {0}/key.pub
cntCommon:
  amount: {1}
  sshPrivateKeyPath: {0}/key
  ipRange: [10.77.0.10, 10.77.0.100]
  homePath: {0}/machines
{2})",
                       dir.string(), amount, extra);
}

inline fs::path aplspawn_binary() { return APLSPAWN_BINARY; }

// Runs the aplspawn binary with args; never throws for a non-zero exit.
inline sys::RunResult aplspawn(const std::vector<std::string>& args,
                               std::chrono::seconds timeout = std::chrono::seconds(300)) {
    std::vector<std::string> argv{aplspawn_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    sys::RunOptions o;
    o.timeout = timeout;
    o.env = {"NO_COLOR=1"};
    return sys::run(argv, o);
}

// What a test prints of a run: how it ended and its FAIL lines first (a CI log may show only
// the start of a failure), then all of stderr.
inline std::string describe_run(const std::string& what, const sys::RunResult& r) {
    std::string fails;
    std::size_t at = 0;
    while (at < r.err.size()) {
        std::size_t end = r.err.find('\n', at);
        if (end == std::string::npos) end = r.err.size();
        std::string_view line(r.err.data() + at, end - at);
        if (line.find("[ FAIL ]") != std::string_view::npos) fails.append("  ").append(line).append("\n");
        at = end + 1;
    }
    return what + " -> " + r.describe() + "\n" + fails + "stderr:\n" + r.err;
}

}  // namespace aplspawn::testing
