// fleet::provision on the real default image (images/build-default-image: Debian bookworm with
// systemd, sshd, sudo, python3), through a loop mount and an overlay in the test's namespaces,
// then booted with systemd-nspawn: the container's own sshd, sudo, visudo and systemd-networkd
// accept what provisioning wrote. Nothing is reached outside the test's namespaces: the
// container's veth peer is in the test's network namespace.
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "fleet_support.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>

using namespace aplspawn;
using namespace aplspawn::testing;
using Catch::Contains;
using namespace std::chrono_literals;

namespace {

constexpr const char* kName = "aplspawn10";
constexpr const char* kIp = "10.77.0.10";
constexpr const char* kGateway = "10.77.0.1";

struct StatInfo {
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};
StatInfo lstat_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return {static_cast<mode_t>(st.st_mode & 07777), st.st_uid, st.st_gid};
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The default image's root partition mounted read-only (loop, by offset; autoclear), an overlay
// over it, all on a tmpfs of the test's mount namespace.
struct DebianScene {
    TempDir t;
    fs::path lower, upper, work, merged;
    std::string key;
    DebianScene() {
        const fs::path image = default_image();
        REQUIRE(::mount("tmpfs", t.path().c_str(), "tmpfs", 0, "mode=0755") == 0);
        lower = t / "lower", upper = t / "upper", work = t / "work", merged = t / "merged";
        for (auto& d : {lower, upper, work, merged}) fs::create_directories(d);
        auto part = image::find_root_partition(image);
        sys::run_checked({"mount", "-t", part.mount_type(), "-o",
                          fmt::format("ro,loop,offset={},sizelimit={}", part.offset, part.size),
                          image.string(), lower.string()});
        std::string opts = fmt::format("lowerdir={},upperdir={},workdir={}", lower.string(),
                                       upper.string(), work.string());
        REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0);
        sys::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet@host", "-f",
                          (t / "fleet_key").string()});
        key = sys::read_file(t / "fleet_key.pub");
    }
    ~DebianScene() {
        ::umount2(merged.c_str(), MNT_DETACH);
        ::umount2(lower.c_str(), MNT_DETACH);
        ::umount2(t.path().c_str(), MNT_DETACH);
    }
    fleet::ProvisionSpec spec() const {
        fleet::ProvisionSpec s;
        s.hostname = kName;
        s.ip = *Ipv4::parse(kIp);
        s.prefix = 24;
        s.gateway = *Ipv4::parse(kGateway);
        s.user = s.group = "test";
        s.user_password = "Debian-User-Pw";
        s.root_password = "Debian-Root-Pw";
        s.dns = *Ipv4::parse(kGateway);
        s.authorized_key = key;
        s.profile = config::BootProfile::lean;
        return s;
    }
    // A command run in the container's root with its own programs (chroot: no boot needed).
    sys::RunResult in_root(std::vector<std::string> argv) const {
        argv.insert(argv.begin(), {"chroot", merged.string()});
        sys::RunOptions o;
        o.timeout = 30s;
        return sys::run(argv, o);
    }
};

// The container's PID 1 as the test's namespace sees it once it runs systemd: nspawn's child
// whose innermost pid is 1 (before its exec, the container's root is not set up yet).
std::optional<pid_t> container_init(pid_t nspawn) {
    for (auto& e : fs::directory_iterator("/proc")) {
        std::string n = e.path().filename();
        if (n.empty() || !std::isdigit(static_cast<unsigned char>(n[0]))) continue;
        std::optional<std::string> status;
        try {
            status = sys::read_file_if_exists(e.path() / "status");
        } catch (const Error&) {  // gone while being read
        }
        if (!status) continue;
        bool child = status->find(fmt::format("\nPPid:\t{}\n", nspawn)) != std::string::npos;
        auto at = status->find("\nNSpid:");
        if (!child || at == std::string::npos) continue;
        std::string line = status->substr(at + 7, status->find('\n', at + 1) - at - 7);
        if (!trimmed(line).ends_with("\t1")) continue;
        // Its command: "systemd" once it has exec'd the image's init.
        std::optional<std::string> comm;
        try {
            comm = sys::read_file_if_exists(e.path() / "comm");
        } catch (const Error&) {
        }
        if (trimmed(comm.value_or("")) != "systemd") continue;
        return static_cast<pid_t>(std::stol(n));
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("the default Debian image: provisioned, idempotent, then booted it accepts all of it",
          "[provision][debian]") {
    DebianScene s;
    const fs::path& m = s.merged;
    auto spec = s.spec();

    // As built, the image does not run networkd: no host0 file.
    auto first = fleet::provision(m, spec);
    CHECK_FALSE(fs::exists(m / "etc/systemd/network/10-aplspawn-host0.network"));
    CHECK(first.has_sudo);
    CHECK(first.python_interpreter == fleet::kAnsiblePython);
    REQUIRE(first.host_public_keys.size() == 2);  // ed25519, ecdsa

    // The image's own tools agree with what was written.
    auto visudo = s.in_root({"visudo", "-c"});
    CHECK(visudo.ok());
    CHECK_THAT(visudo.out, Contains("/etc/sudoers.d/aplspawn-test: parsed OK"));
    auto sudo_l = s.in_root({"sudo", "-l", "-U", "test"});
    CHECK_THAT(sudo_l.out, Contains("(ALL : ALL) NOPASSWD: ALL"));
    CHECK(trimmed(s.in_root({"getent", "passwd", "test"}).out) == "test:x:1000:1000::/home/test:/bin/bash");
    CHECK(trimmed(s.in_root({"id", "-gn", "test"}).out) == "test");
    CHECK(s.in_root({"pwck", "-r", "-q"}).ok());
    CHECK(s.in_root({"grpck", "-r"}).ok());
    CHECK(lstat_of(m / "etc/shadow").mode == 0640);
    CHECK(s.in_root({"ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ed25519_key"}).ok());
    CHECK(s.in_root({"ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ecdsa_key"}).ok());
    CHECK_FALSE(fs::exists(m / "etc/ssh/ssh_host_rsa_key"));  // opt-in
    CHECK_THAT(sys::read_file(m / "etc/hosts"), Contains("ff02::1\t\tip6-allnodes\n"));  // kept
    {  // aplspawn's Python for Ansible runs with the image's python3, a program on its stdin
        sys::RunOptions o;
        o.timeout = 30s;
        o.input = "import sys\nprint(sys.executable, sys.argv)\n";
        auto py = sys::run({"chroot", m.string(), fleet::kAnsiblePython}, o);
        CHECK(py.ok());
        CHECK(py.out == "/usr/bin/python3 ['']\n");
    }

    // Nothing of a second run changes the upper layer (bytes, modes, owners, times).
    auto before = snapshot(s.upper);
    auto again = fleet::provision(m, spec);
    CHECK(again.changes == std::vector<std::string>{});
    CHECK(again.host_public_keys == first.host_public_keys);
    CHECK(snapshot(s.upper) == before);

    // An image that enables systemd-networkd (the default one disables it): a host0 file.
    fs::create_symlink("/lib/systemd/system/systemd-networkd.service",
                       m / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service");
    auto nd = fleet::provision(m, spec);
    CHECK(nd.changes == std::vector<std::string>{"wrote /etc/systemd/network/10-aplspawn-host0.network"});

    // Boot it. networkd, not the test, gives host0 its address: from the file provisioning wrote.
    sys::SpawnOptions so;
    so.log_file = s.t / "nspawn.log";
    sys::Child nspawn = sys::spawn({"systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                                    "--directory=" + m.string(), std::string("--machine=") + kName,
                                    "--network-veth", "--console=read-only", "--link-journal=no",
                                    "--resolv-conf=off", "--boot"},
                                   so);
    auto log = [&] {  // its last lines, for failure messages
        std::string text = sys::read_file_if_exists(s.t / "nspawn.log").value_or("");
        size_t at = text.size();
        for (int n = 0; n < 30 && at > 0; ++n) {
            size_t nl = text.rfind('\n', at - 1);
            at = nl == std::string::npos ? 0 : nl;
        }
        return text.substr(at);
    };
    std::optional<pid_t> init;
    if (!eventually([&] { return (init = container_init(nspawn.pid())).has_value(); }, 20s))
        FAIL("the container's systemd did not start; nspawn's log:\n" << log());
    const std::string pid = std::to_string(*init);
    // Until systemd has finished starting up (bounded). Before it made /run/systemd/system the
    // answer is "offline", before it listens on its bus there is none.
    sys::RunResult state;
    sys::RunOptions wait;
    wait.timeout = 10s;
    eventually([&] {
        state = sys::run({"nsenter", "-t", pid, "-a", "systemctl", "is-system-running"}, wait);
        auto st = trimmed(state.out);
        return st == "running" || st == "degraded" || st == "maintenance" || st == "stopping";
    }, 90s);
    INFO("is-system-running: " << state.describe() << ": " << state.err);
    INFO("nspawn's log:\n" << log());
    INFO("failed units: " << sys::run({"nsenter", "-t", pid, "-a", "systemctl", "--failed", "--no-legend"}).out);
    CHECK(trimmed(state.out) == "running");  // the lean profile's masks break nothing
    CHECK(trimmed(sys::run({"nsenter", "-t", pid, "-a", "systemctl", "is-enabled",
                            "console-getty.service"}).out) == "masked");
    CHECK(trimmed(sys::run({"nsenter", "-t", pid, "-a", "cat", "/etc/machine-id"}).out) ==
          trimmed(sys::read_file(m / "etc/machine-id")));

    const std::string veth = std::string("ve-") + kName;
    sys::run_checked({"ip", "addr", "add", std::string(kGateway) + "/24", "dev", veth});
    sys::run_checked({"ip", "link", "set", veth, "up"});
    CHECK(eventually([&] {
        auto a = sys::run({"nsenter", "-t", pid, "-n", "ip", "-4", "-o", "addr", "show", "dev", "host0"});
        return a.out.find(std::string(kIp) + "/24") != std::string::npos;
    }, 30s));
    CHECK_THAT(sys::run({"nsenter", "-t", pid, "-n", "ip", "-4", "route", "show", "default"}).out,
               Contains(std::string("default via ") + kGateway + " dev host0"));

    // SSH as the fleet's user with the fleet's key, the host key checked strictly against the
    // keys provisioning returned; passwordless sudo there.
    std::string known;
    for (auto& k : first.host_public_keys) known += fmt::format("{} {}\n", kIp, k);
    write_file(s.t / "known_hosts", known);
    std::vector<std::string> ssh{"ssh", "-F", "/dev/null", "-i", (s.t / "fleet_key").string(),
                                 "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                 "-o", "StrictHostKeyChecking=yes",
                                 "-o", "UserKnownHostsFile=" + (s.t / "known_hosts").string(),
                                 "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3",
                                 std::string("test@") + kIp,
                                 "hostname; sudo -n id -u; id -gn; stat -c '%a %U' ~ ~/.ssh "
                                 "~/.ssh/authorized_keys"};
    sys::RunResult r;
    sys::RunOptions ro;
    ro.timeout = 10s;
    CHECK(eventually([&] { return (r = sys::run(ssh, ro)).ok(); }, 30s));
    INFO("ssh: " << r.describe() << ": " << r.err);
    CHECK(r.out == fmt::format("{}\n0\ntest\n700 test\n700 test\n600 test\n", kName));

    ::kill(nspawn.pid(), SIGTERM);  // nspawn: SIGRTMIN+3 to the container's systemd, a clean halt
    CHECK(nspawn.wait_for(30s).has_value());
}
