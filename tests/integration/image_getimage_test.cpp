// getimage for real: the aplspawn binary (and the image module) against the tests' own HTTP
// server on 127.0.0.1 in the test's network namespace, file:// repositories, small tmpfs
// stores mounted in the test's mount namespace, and loop devices attached with losetup.
#include "aplspawn/image/pull.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/image/store.hpp"
#include "aplspawn/sys/fd.hpp"
#include "support/http_server.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <csignal>

#include <chrono>
#include <random>

using namespace aplspawn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kName = "debian-bookworm-latest.img";

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        std::uint64_t v = rng();
        std::memcpy(&s[i], &v, 8);
    }
    return s;
}

int count(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

// A fleet directory with a repository, a store and a config whose image section is ours.
struct Env {
    testing::TempDir tmp;
    fs::path repo = tmp / "repo";
    fs::path scratch = tmp / "scratch";
    fs::path cfg = tmp / "aplspawn.yaml";

    Env() {
        fs::create_directories(repo);
        fs::create_directories(scratch);
    }
    fs::path store() const { return tmp.path() / "work" / "images"; }
    fs::path current() const { return store() / kName; }

    // image: lines replacing "repo: DIR/repo" of the base config.
    void configure(const std::string& image_lines) {
        std::string text = testing::base_config(tmp.path());
        std::string repo_line = "  repo: " + (tmp.path() / "repo").string() + "\n";
        auto at = text.find(repo_line);
        REQUIRE(at != std::string::npos);
        text.replace(at, repo_line.size(), image_lines);
        testing::write_file(cfg, text);
    }
    void configure_repo(const std::string& repo_url, const std::string& extra = "") {
        configure("  repo: " + repo_url + "\n" + extra);
    }

    // Puts a file in the repository; with sums, (re)writes SHA256SUMS listing it.
    void publish(const std::string& name, const std::string& content, bool sums = true) {
        testing::write_file(repo / name, content);
        if (sums) testing::write_file(repo / "SHA256SUMS", image::sha256_hex(content) + " *" + name + "\n");
    }

    sys::RunResult getimage(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"-c", cfg.string(), "-o", "getimage"};
        args.insert(args.end(), extra.begin(), extra.end());
        return testing::aplspawn(args, 120s);
    }

    // Files under the store other than the lock, relative.
    std::vector<std::string> store_files() const {
        std::vector<std::string> out;
        if (!fs::exists(store())) return out;
        for (auto& e : fs::recursive_directory_iterator(store()))
            if (!e.is_directory() && e.path().filename() != "lock")
                out.push_back(e.path().lexically_relative(store()).string());
        std::sort(out.begin(), out.end());
        return out;
    }

    image::PullRequest request(const std::string& url) const {
        image::PullRequest r;
        r.url = url;
        r.store = store();
        r.name = kName;
        r.fetch.retry_delay = 10ms;
        return r;
    }
};

void mount_tmpfs(const fs::path& dir, const std::string& size) {
    fs::create_directories(dir);
    sys::run_checked({"mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir.string()});
}

// A loop device attached with losetup, read-only, released when this object (or the test's
// process) goes: autoclear is set while we hold it open.
class LosetupDevice {
public:
    explicit LosetupDevice(const fs::path& file) {
        auto r = sys::run_checked({"losetup", "--find", "--show", "--read-only", file.string()});
        path_ = r.out.substr(0, r.out.find('\n'));
        fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_) {
            sys::run({"losetup", "-d", path_});
            FAIL("open " << path_);
        }
        loop_info64 info{};
        REQUIRE(::ioctl(fd_.get(), LOOP_GET_STATUS64, &info) == 0);
        info.lo_flags |= LO_FLAGS_AUTOCLEAR;
        REQUIRE(::ioctl(fd_.get(), LOOP_SET_STATUS64, &info) == 0);
    }
    ~LosetupDevice() { fd_.reset(); }  // last close: the kernel detaches it
    const std::string& path() const { return path_; }
    std::string read(std::size_t n) const {
        std::string s(n, '\0');
        REQUIRE(::pread(fd_.get(), s.data(), n, 0) == static_cast<ssize_t>(n));
        return s;
    }
    void release() { fd_.reset(); }

private:
    std::string path_;
    sys::UniqueFd fd_;
};

}  // namespace

TEST_CASE("getimage downloads over HTTP, verifies with SHA256SUMS, then is up to date", "[image]") {
    Env env;
    const std::string content = random_bytes(3u << 20, 1);
    env.publish(kName, content);
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());

    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.empty());  // step lines go to stderr only
    // The original's lines, in its order.
    auto pos = [&](const std::string& s) { return r.err.find(s); };
    CHECK(pos("‣ [ OK ] Creating working directories\n") < pos("‣ [ OK ] Executing prechecks for image download\n"));
    CHECK(pos("‣ [ OK ] Executing prechecks for image download\n") < pos("‣ [ INFO ] URL: " + http.url(kName)));
    CHECK(pos("‣ [ INFO ] URL: ") < pos("‣ [ OK ] Downloading image " + kName + " (size 3M) to " + env.store().string() + " (free space "));
    CHECK(count(r.err, "% (") == 10);  // not a terminal: a line every 10%
    CHECK(r.err.find(": 100% (3.00 MiB of 3.00 MiB") != std::string::npos);
    CHECK(r.err.find("Verifying image checksum: sha256 " + image::sha256_hex(content) + " matches SHA256SUMS") !=
          std::string::npos);
    CHECK(r.err.find("cannot be verified") == std::string::npos);

    // The store: NAME -> by-sha256/HEX.img, its record, nothing partial.
    const std::string hex = image::sha256_hex(content);
    CHECK(fs::read_symlink(env.current()) == fs::path("by-sha256") / (hex + ".img"));
    CHECK(sys::read_file(env.current()) == content);
    // (sorted: "by-sha256/..." before "debian-...")
    CHECK(env.store_files() == std::vector<std::string>{"by-sha256/" + hex + ".img", "by-sha256/" + hex + ".json", kName});
    auto info = image::version_info_from_json(sys::read_file(env.store() / "by-sha256" / (hex + ".json")));
    REQUIRE(info);
    CHECK(info->url == http.url(kName));
    CHECK(info->checksum_source == "SHA256SUMS " + http.url("SHA256SUMS"));
    CHECK(info->published_sha256 == hex);
    CHECK(http.requests("GET", "/" + kName).size() == 1);

    // Again: already up to date, nothing downloaded.
    auto again = env.getimage();
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(again.err.find("‣ [ OK ] Creating working directories (already so)") != std::string::npos);
    CHECK(again.err.find("is already up to date (sha256 " + hex.substr(0, 16)) != std::string::npos);
    CHECK(again.err.find("Downloading image") == std::string::npos);
    CHECK(http.requests("GET", "/" + kName).size() == 1);
}

TEST_CASE("getimage: an image pinned by image.sha256 and stored needs no network", "[image]") {
    Env env;
    const std::string content = random_bytes(1u << 20, 2);
    env.publish(kName, content, false);
    const std::string hex = image::sha256_hex(content);
    {
        testing::HttpServer http(env.repo, env.scratch);
        env.configure_repo(http.base(), "  sha256: " + hex + "\n");
        auto r = env.getimage();
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(r.err.find("matches image.sha256") != std::string::npos);
        CHECK(http.requests("GET", "/SHA256SUMS").empty());  // pinned: no need to look
    }
    // The server is gone: the pinned checksum settles it.
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("already up to date (sha256 " + hex.substr(0, 16) + "… matches image.sha256)") != std::string::npos);
}

TEST_CASE("getimage without any checksum: one INFO warning, and not modified means up to date", "[image]") {
    Env env;
    env.publish(kName, random_bytes(1u << 20, 3), false);
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(count(r.err, "‣ [ INFO ] The image cannot be verified: no image.sha256 in the config and no SHA256SUMS at " +
                           http.url("SHA256SUMS")) == 1);
    CHECK(r.err.find("Verifying") == std::string::npos);

    auto again = env.getimage();
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(again.err.find("already up to date (the server says it is not modified)") != std::string::npos);
    auto heads = http.requests("HEAD", "/" + kName);
    REQUIRE(heads.size() == 2);
    CHECK(heads[1]["status"] == 304);  // asked conditionally, with the stored ETag
    CHECK(heads[1]["if_none_match"].is_string());
    CHECK(http.requests("GET", "/" + kName).size() == 1);
}

TEST_CASE("getimage: 404 is one line naming the URL and the reason, exit 1", "[image]") {
    Env env;
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find("‣ [ FAIL ] Executing prechecks for image download: " + http.url(kName) + ": HTTP 404 Not Found\n") !=
          std::string::npos);
    CHECK(env.store_files().empty());
}

TEST_CASE("getimage: a refused connection fails at once, naming the URL", "[image]") {
    Env env;
    std::string base = "http://127.0.0.1:" + std::to_string(testing::refused_port());
    env.configure_repo(base);
    auto t0 = std::chrono::steady_clock::now();
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // not retried: refused is not transient
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find(base + "/" + kName + ": Connection refused") != std::string::npos);
    CHECK(r.err.find("retrying") == std::string::npos);
}

TEST_CASE("getimage: an unknown host fails at once, naming the URL", "[image]") {
    Env env;
    // .invalid never resolves; the test's network namespace has no route to any nameserver.
    const std::string base = "http://no-such-host.invalid";
    env.configure_repo(base);
    auto t0 = std::chrono::steady_clock::now();
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find("‣ [ FAIL ] Executing prechecks for image download: " + base + "/" + kName +
                     ": Could not resolve host: no-such-host.invalid\n") != std::string::npos);
    CHECK(r.err.find("retrying") == std::string::npos);
    CHECK(env.store_files().empty());
}

TEST_CASE("getimage verifies TLS: a self-signed server is refused, a trusted one works", "[image]") {
    Env env;
    const std::string content = random_bytes(1u << 20, 22);
    env.publish(kName, content);
    const fs::path cert = env.scratch / "cert.pem", key = env.scratch / "key.pem";
    sys::run_checked({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                      "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.string(),
                      "-out", cert.string()});
    testing::HttpServer http(env.repo, env.scratch, {"--tls", cert.string(), key.string()});
    const std::string base = "https://127.0.0.1:" + std::to_string(http.port());
    env.configure_repo(base);

    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find("‣ [ FAIL ] Executing prechecks for image download: " + base + "/" + kName + ": ") !=
          std::string::npos);
    CHECK(r.err.find("self-signed certificate") != std::string::npos);
    CHECK(r.err.find("retrying") == std::string::npos);
    CHECK(http.requests().empty());  // no request got through the handshake
    CHECK(env.store_files().empty());

    // The same server, its certificate trusted (CURL_CA_BUNDLE, as a user's own CA would be).
    sys::RunOptions o;
    o.timeout = 120s;
    o.env = {"NO_COLOR=1", "CURL_CA_BUNDLE=" + cert.string()};
    auto trusted = sys::run({testing::aplspawn_binary().string(), "-c", env.cfg.string(), "-o", "getimage"}, o);
    INFO(trusted.err);
    REQUIRE(trusted.exit_code == 0);
    CHECK(sys::read_file(env.current()) == content);
}

TEST_CASE("getimage: a connection dropped mid-body is resumed with Range in the same run", "[image]") {
    Env env;
    const std::string content = random_bytes(4u << 20, 4);
    env.publish(kName, content);
    testing::HttpServer http(env.repo, env.scratch, {"--drop-after", "1500000", "--drop-times", "1"});
    env.configure_repo(http.base());
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("‣ [ INFO ] Transfer interrupted (") != std::string::npos);
    CHECK(r.err.find("retrying in 1 s (attempt 2 of 4)") != std::string::npos);
    auto gets = http.requests("GET", "/" + kName);
    REQUIRE(gets.size() == 2);
    CHECK(gets[0]["note"] == "dropped");
    CHECK(gets[0]["sent"] == 1500000);
    CHECK(gets[1]["range"] == "bytes=1500000-");
    CHECK(gets[1]["status"] == 206);
    CHECK(gets[1]["if_range"].is_string());
    CHECK(sys::read_file(env.current()) == content);
}

TEST_CASE("getimage: a download interrupted for good resumes on the next run", "[image]") {
    Env env;
    const std::string content = random_bytes(4u << 20, 5);
    env.publish(kName, content);
    testing::HttpServer http(env.repo, env.scratch, {"--drop-after", "1000000", "--drop-times", "1"});
    env.configure_repo(http.base());

    // One attempt only: the run fails and keeps the partial download.
    auto req = env.request(http.url(kName));
    req.fetch.attempts = 1;
    auto checks = image::precheck(req);
    CHECK(checks.source == image::ChecksumSource::sums_file);
    CHECK_THROWS_WITH(image::pull(checks), Catch::Contains(http.url(kName)) &&
                                               Catch::Contains("the partial download (1M) is kept and resumes on the next run"));
    image::Store store(env.store(), kName);
    auto part = store.partial();
    REQUIRE(part);
    CHECK(part->size == 1000000);
    CHECK_FALSE(fs::exists(env.current()));

    // The next run picks it up: its bytes are hashed from disk, the rest is asked for by Range.
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("‣ [ INFO ] Resuming the download of " + kName + " at 976.6 KiB of 4M") != std::string::npos);
    auto gets = http.requests("GET", "/" + kName);
    REQUIRE(gets.size() == 2);
    CHECK(gets[1]["range"] == "bytes=1000000-");
    CHECK(gets[1]["sent"] == content.size() - 1000000);
    CHECK(sys::read_file(env.current()) == content);
    CHECK_FALSE(store.partial());
    CHECK(r.err.find("Verifying image checksum") != std::string::npos);
}

TEST_CASE("getimage interrupted by Ctrl-C resumes from its partial download on the next run", "[image]") {
    Env env;
    // Larger than the download pipeline's 4 MiB blocks, so the partial file grows while it runs.
    const std::string content = random_bytes(12u << 20, 21);
    env.publish(kName, content);
    testing::HttpServer http(env.repo, env.scratch, {"--rate", "2000000"});
    env.configure_repo(http.base());
    image::Store store(env.store(), kName);

    sys::SpawnOptions o;
    o.log_file = env.scratch / "first.log";
    sys::Child first = sys::spawn({testing::aplspawn_binary().string(), "-c", env.cfg.string(), "-o", "getimage"}, o);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!(fs::exists(store.partial_path()) && fs::file_size(store.partial_path()) >= (1u << 20))) {
        INFO(sys::read_file_if_exists(o.log_file).value_or("(no log)"));
        REQUIRE_FALSE(first.poll());
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(::kill(first.pid(), SIGINT) == 0);
    auto status = first.wait_for(10s);
    REQUIRE(status);
    CHECK(WIFSIGNALED(*status));
    auto part = store.partial();
    REQUIRE(part);
    const std::uint64_t kept = part->size;
    CHECK(kept >= (1u << 20));
    CHECK(kept < content.size());
    CHECK_FALSE(fs::exists(env.current()));

    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("‣ [ INFO ] Resuming the download of " + kName + " at ") != std::string::npos);
    auto gets = http.requests("GET", "/" + kName);
    REQUIRE(gets.size() == 2);
    CHECK(gets[1]["range"] == fmt::format("bytes={}-", kept));
    CHECK(gets[1]["status"] == 206);
    CHECK(r.err.find("Verifying image checksum: sha256 " + image::sha256_hex(content)) != std::string::npos);
    CHECK(sys::read_file(env.current()) == content);
    CHECK_FALSE(store.partial());
}

TEST_CASE("getimage: a server that ignores Range makes the download start over cleanly", "[image]") {
    Env env;
    const std::string content = random_bytes(3u << 20, 6);
    env.publish(kName, content);
    int port = 0;
    {
        // A first run is cut off for good and keeps 700000 bytes.
        testing::HttpServer dropping(env.repo, env.scratch, {"--drop-after", "700000"});
        port = dropping.port();
        env.configure_repo(dropping.base());
        auto req = env.request(dropping.url(kName));
        req.fetch.attempts = 1;
        CHECK_THROWS(image::pull(image::precheck(req)));
    }
    REQUIRE(image::Store(env.store(), kName).partial());
    // The same address now answers every request with the whole file.
    testing::HttpServer http(env.repo, env.scratch, {"--ignore-range", "--port", std::to_string(port)});
    REQUIRE(http.port() == port);

    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("Resuming the download") != std::string::npos);
    CHECK(r.err.find("The server sent the whole image instead of the rest (it ignores Range, or the image changed): "
                     "starting over") != std::string::npos);
    auto gets = http.requests("GET", "/" + kName);
    REQUIRE(gets.size() == 1);
    CHECK(gets[0]["range"] == "bytes=700000-");
    CHECK(gets[0]["status"] == 200);
    CHECK(sys::read_file(env.current()) == content);
    CHECK(r.err.find("Verifying image checksum") != std::string::npos);
}

TEST_CASE("getimage: a wrong checksum fails with both hashes and leaves nothing behind", "[image]") {
    Env env;
    const std::string content = random_bytes(2u << 20, 7);
    env.publish(kName, content, false);
    testing::HttpServer http(env.repo, env.scratch);
    const std::string wrong(64, 'a');
    const std::string actual = image::sha256_hex(content);

    SECTION("pinned in the config") {
        env.configure_repo(http.base(), "  sha256: " + wrong + "\n");
        auto r = env.getimage();
        INFO(r.err);
        CHECK(r.exit_code == 1);
        CHECK(count(r.err, "‣ [ FAIL ]") == 1);
        CHECK(r.err.find("checksum mismatch for " + http.url(kName) + ": expected sha256 " + wrong +
                         " (image.sha256), got " + actual + "; the download was removed") != std::string::npos);
    }
    SECTION("listed in SHA256SUMS") {
        testing::write_file(env.repo / "SHA256SUMS", wrong + "  " + kName + "\n");
        env.configure_repo(http.base());
        auto r = env.getimage();
        INFO(r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("expected sha256 " + wrong + " (SHA256SUMS " + http.url("SHA256SUMS") + "), got " + actual) !=
              std::string::npos);
    }
    CHECK(env.store_files().empty());
    CHECK_FALSE(fs::exists(env.current()));
}

TEST_CASE("getimage from a file:// repository (a directory), and a resume over file://", "[image]") {
    Env env;
    const std::string content = random_bytes(3u << 20, 8);
    env.publish(kName, content);
    env.configure_repo(env.repo.string());  // a plain directory: file://
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("‣ [ INFO ] URL: file://" + (env.repo / kName).string()) != std::string::npos);
    CHECK(r.err.find("matches SHA256SUMS file://") != std::string::npos);
    CHECK(sys::read_file(env.current()) == content);
    CHECK(env.getimage().err.find("already up to date") != std::string::npos);

    // A new version, half of it already in .partial from an earlier run.
    const std::string next = random_bytes(3u << 20, 9);
    env.publish(kName, next);
    auto req = env.request("file://" + (env.repo / kName).string());
    auto probe = image::probe(req.url, {}, req.fetch);
    image::Store store(env.store(), kName);
    sys::write_file_atomic(store.partial_path(), next.substr(0, 1234567), 0644);
    store.write_partial_info({req.url, probe.validators, probe.size, "none"});
    auto checks = image::precheck(req);
    CHECK(checks.resume_from == 1234567);
    auto result = image::pull(checks);
    CHECK(result.resumed_from == 1234567);
    CHECK(result.received == next.size() - 1234567);
    CHECK(result.verified);
    CHECK(sys::read_file(env.current()) == next);
}

TEST_CASE("getimage from file:// without a checksum: unchanged is up to date, changed is fetched", "[image]") {
    Env env;
    env.publish(kName, random_bytes(1u << 20, 19), false);
    env.configure_repo(env.repo.string());
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(count(r.err, "‣ [ INFO ] The image cannot be verified: no image.sha256 in the config and no SHA256SUMS at file://") == 1);
    const fs::path first = fs::canonical(env.current());

    // Same file (inode, size, mtime): nothing to do.
    auto again = env.getimage();
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(again.err.find("already up to date (the server says it is not modified)") != std::string::npos);
    CHECK(fs::canonical(env.current()) == first);

    // Replaced in the repository: downloaded again.
    const std::string next = random_bytes(1u << 20, 20);
    env.publish(kName, next, false);
    auto third = env.getimage();
    INFO(third.err);
    REQUIRE(third.exit_code == 0);
    CHECK(third.err.find("already up to date") == std::string::npos);
    CHECK(sys::read_file(env.current()) == next);
}

TEST_CASE("getimage: a store too small for the image is refused before downloading", "[image]") {
    Env env;
    env.publish(kName, random_bytes(8u << 20, 10));
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());
    mount_tmpfs(env.store(), "20m");
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("‣ [ FAIL ] Executing prechecks for image download: no space in " + env.store().string() +
                     " for image " + kName + ": 20M free, the download needs 24M (8M plus a margin of 16M)") !=
          std::string::npos);
    CHECK(http.requests("GET", "/" + kName).empty());
    CHECK(env.store_files().empty());
}

TEST_CASE("getimage: running out of space mid-way (ENOSPC) leaves nothing behind and says so", "[image]") {
    Env env;
    // 48 MiB that compress to almost nothing: the free-space check passes on the compressed
    // size, the decompressed image does not fit in the 24 MiB store.
    std::string content;
    for (int i = 0; i < (48 << 20) / 4096; ++i) content += std::string(4095, static_cast<char>('a' + i % 26)) + '\n';
    testing::write_file(env.scratch / kName, content);
    sys::run_checked({"zstd", "-q", "-3", (env.scratch / kName).string(), "-o", (env.repo / (kName + ".zst")).string()});
    testing::HttpServer http(env.repo, env.scratch);
    env.configure(fmt::format("  url: {}\n", http.url(kName + ".zst")));
    mount_tmpfs(env.store(), "24m");
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find("No space left on device; the partial download was removed (24M free in " + env.store().string() +
                     ")") != std::string::npos);
    CHECK(env.store_files().empty());
    CHECK(sys::free_space(env.store()) >= (24u << 20) - (64u << 10));  // all but the lock file
}

TEST_CASE("getimage decompresses xz, zstd and gzip images while downloading", "[image]") {
    struct Kind {
        std::string ext;
        std::vector<std::string> cmd;
    };
    for (const Kind& k : {Kind{".xz", {"xz", "-T2", "-3", "-k"}}, Kind{".zst", {"zstd", "-q", "-k"}},
                          Kind{".gz", {"gzip", "-k"}}}) {
        INFO(k.ext);
        Env env;
        std::string content = random_bytes(1u << 20, 11);
        content += std::string(2u << 20, 'x');
        testing::write_file(env.repo / kName, content);
        auto cmd = k.cmd;
        cmd.push_back((env.repo / kName).string());
        sys::run_checked(cmd);
        fs::remove(env.repo / kName);
        const std::string packed = sys::read_file(env.repo / (kName + k.ext));
        testing::write_file(env.repo / "SHA256SUMS", image::sha256_hex(packed) + "  " + kName + k.ext + "\n");
        testing::HttpServer http(env.repo, env.scratch);
        env.configure(fmt::format("  url: {}\n", http.url(kName + k.ext)));

        auto r = env.getimage();
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(r.err.find("Verifying image checksum: sha256 " + image::sha256_hex(packed)) != std::string::npos);
        CHECK(sys::read_file(env.current()) == content);  // stored decompressed, without the suffix
        auto cur = image::Store(env.store(), kName).current();
        REQUIRE(cur);
        REQUIRE(cur->info);
        CHECK(cur->info->sha256 == image::sha256_hex(content));
        CHECK(cur->info->published_sha256 == image::sha256_hex(packed));
        CHECK(env.store_files().size() == 3);  // NAME, the version and its record
        CHECK(env.getimage().err.find("already up to date") != std::string::npos);
    }
}

TEST_CASE("getimage: a corrupt compressed image fails and leaves nothing behind", "[image]") {
    Env env;
    // Not xz at all (an error page saved under the image's name, say), and no checksum to catch it.
    testing::write_file(env.repo / (kName + ".xz"), "<html>" + std::string(1u << 20, '.') + "</html>\n");
    testing::HttpServer http(env.repo, env.scratch);
    env.configure(fmt::format("  url: {}\n", http.url(kName + ".xz")));
    auto r = env.getimage();
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count(r.err, "‣ [ FAIL ]") == 1);
    CHECK(r.err.find("‣ [ FAIL ] Downloading image " + kName + ": decompress " + http.url(kName + ".xz") +
                     ": xz: not xz data") != std::string::npos);
    CHECK(env.store_files().empty());
}

TEST_CASE("getimage: an image in use by a loop device stays, the new version goes beside it", "[image]") {
    Env env;
    const std::string v1 = random_bytes(1u << 20, 12), v2 = random_bytes(1u << 20, 13);
    env.publish(kName, v1);
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());
    REQUIRE(env.getimage().exit_code == 0);
    const fs::path old_version = fs::canonical(env.current());

    LosetupDevice loop(env.current());  // as spawn would: through NAME, resolved once
    CHECK(image::loop_devices_using(old_version) == std::vector<std::string>{loop.path()});

    env.publish(kName, v2);  // a new version appears in the repository
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(sys::read_file(env.current()) == v2);
    CHECK(fs::canonical(env.current()) != old_version);
    // The old version is untouched and still what the loop device reads.
    CHECK(sys::read_file(old_version) == v1);
    CHECK(loop.read(v1.size()) == v1);
    CHECK(r.err.find("‣ [ INFO ] The previous version " + old_version.string() + " stays: " + loop.path() +
                     " uses it, until its fleet is respawned or cleaned up") != std::string::npos);

    // Once nothing uses it, the next getimage removes it.
    loop.release();
    for (int i = 0; i < 100 && !image::loop_devices_using(old_version).empty(); ++i)
        std::this_thread::sleep_for(50ms);  // autoclear may finish asynchronously
    CHECK(image::loop_devices_using(old_version).empty());
    auto again = env.getimage();
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(again.err.find("already up to date") != std::string::npos);
    // Pruning happens after a download; an up-to-date run changes nothing. A third version
    // prunes both older ones.
    env.publish(kName, v1 + "3");
    REQUIRE(env.getimage().exit_code == 0);
    CHECK_FALSE(fs::exists(old_version));
    CHECK(env.store_files().size() == 3);
}

TEST_CASE("getimage retries transient server errors with a pause, and follows redirects", "[image]") {
    Env env;
    const std::string content = random_bytes(1u << 20, 14);
    env.publish(kName, content);
    testing::HttpServer http(env.repo, env.scratch, {"--fail-first", "2"});
    env.configure(fmt::format("  url: {}\n", http.url("redirect/" + kName)));
    auto t0 = std::chrono::steady_clock::now();
    auto r = env.getimage();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(std::chrono::steady_clock::now() - t0 >= 3s);  // 1 s, then 2 s
    CHECK(count(r.err, "Transfer interrupted (HTTP 503 Service Unavailable)") == 2);
    CHECK(r.err.find("retrying in 2 s (attempt 3 of 4)") != std::string::npos);
    CHECK(r.err.find("matches SHA256SUMS " + http.url("redirect/SHA256SUMS")) != std::string::npos);
    CHECK(sys::read_file(env.current()) == content);
}

TEST_CASE("a stalled transfer times out instead of hanging, a bounded number of times", "[image]") {
    Env env;
    env.publish(kName, random_bytes(4u << 20, 15));
    testing::HttpServer http(env.repo, env.scratch, {"--rate", "20000"});
    auto req = env.request(http.url(kName));
    req.fetch.low_speed_bytes = 200000;
    req.fetch.low_speed_time = 1s;
    req.fetch.attempts = 2;
    int retries = 0;
    req.fetch.on_retry = [&](const std::string& why, int, std::chrono::milliseconds) {
        ++retries;
        CHECK(why.find("too slow") != std::string::npos);
    };
    auto t0 = std::chrono::steady_clock::now();
    auto checks = image::precheck(req);
    CHECK_THROWS_WITH(image::pull(checks), Catch::Contains("gave up after 2 attempts"));
    CHECK(retries == 1);
    CHECK(std::chrono::steady_clock::now() - t0 < 15s);
}

TEST_CASE("getimage shows a progress bar on a terminal and nothing with -q", "[image]") {
    Env env;
    env.publish(kName, random_bytes(3u << 20, 16));
    testing::HttpServer http(env.repo, env.scratch, {"--rate", "2000000"});
    env.configure_repo(http.base());
    // script(1) gives the binary a terminal; its output (the terminal's) comes on stdout.
    std::string cmd = testing::aplspawn_binary().string() + " -c " + env.cfg.string() + " -o getimage";
    sys::RunOptions o;
    o.timeout = 60s;
    o.env = {"NO_COLOR=1", "TERM=xterm"};
    auto r = sys::run({"script", "-qec", cmd, "/dev/null"}, o);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("% [#") != std::string::npos);
    CHECK(r.out.find("MiB/s  ETA 0:0") != std::string::npos);
    CHECK(r.out.find("\r\033[K‣ [ OK ] Downloading image") != std::string::npos);  // bar erased first
    CHECK(r.out.find("% (") == std::string::npos);  // no 10% lines on a terminal

    env.publish(kName, random_bytes(3u << 20, 17));
    auto q = env.getimage({"-q"});
    CHECK(q.exit_code == 0);
    CHECK(q.err.empty());
}

TEST_CASE("getimage --dry-run plans and changes nothing", "[image]") {
    Env env;
    env.publish(kName, random_bytes(1u << 20, 18));
    testing::HttpServer http(env.repo, env.scratch);
    env.configure_repo(http.base());
    auto r = env.getimage({"--dry-run"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("‣ [ PLAN ] create directory " + env.store().string()) != std::string::npos);
    CHECK(r.err.find("‣ [ PLAN ] download image " + kName + " (size 1M) to " + env.store().string()) != std::string::npos);
    CHECK_FALSE(fs::exists(env.tmp / "work"));
    CHECK(http.requests("GET", "/" + kName).empty());
}
