// fleet::provision on real overlayfs mounts (a Debian-like tree as the lower layer, upper and work
// on a tmpfs of the test's namespace), and on the busybox image of tests/fixtures/make-test-image
// --evil through a loop mount. Hostile symlinks point at targets that really exist in the
// namespace's private /tmp, so a write that followed them would land there.
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "fleet/provision_password.hpp"
#include "fleet/provision_text.hpp"
#include "fleet_support.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <map>

using namespace aplspawn;
using namespace aplspawn::testing;
using Catch::Contains;

namespace {

struct StatInfo {
    mode_t mode = 0;  // with type bits
    uid_t uid = 0;
    gid_t gid = 0;
};

StatInfo lstat_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return {st.st_mode, st.st_uid, st.st_gid};
}

// All of the machine's own state a hostile image aims at: a private tmpfs on /tmp.
void private_tmp() { REQUIRE(::mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") == 0); }

void file(const fs::path& p, std::string_view content, mode_t mode = 0644, uid_t uid = 0, gid_t gid = 0) {
    fs::create_directories(p.parent_path());
    sys::write_file_atomic(p, content, mode);
    REQUIRE(::lchown(p.c_str(), uid, gid) == 0);
}

void link(const std::string& target, const fs::path& p) {
    fs::create_directories(p.parent_path());
    fs::create_symlink(target, p);
}

struct TreeOptions {
    bool networkd = true;
};

// A bookworm-like root: merged /usr, bash, sudo, python3, shadow files as Debian has them, /etc/skel,
// a resolv.conf symlink to resolved's stub, systemd units, and SSH host keys baked into the image
// (which no container may keep).
void make_tree(const fs::path& r, const TreeOptions& o = {}) {
    for (auto d : {"usr/bin", "usr/sbin", "usr/lib/systemd/system", "etc/systemd/system", "home", "root",
                   "tmp", "var/lib", "run", "etc/ssh", "etc/sudoers.d"})
        fs::create_directories(r / d);
    link("usr/bin", r / "bin");
    link("usr/lib", r / "lib");
    file(r / "usr/bin/bash", "#!/bin/sh\n", 0755);
    file(r / "usr/bin/sh", "#!/bin/sh\n", 0755);
    file(r / "usr/bin/sudo", "stub\n", 04755);
    file(r / "usr/bin/python3.11", "stub\n", 0755);
    link("python3.11", r / "usr/bin/python3");
    file(r / "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                           "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                           "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n");
    file(r / "etc/group", "root:x:0:\ndaemon:x:1:\nsudo:x:27:\nshadow:x:42:\nnogroup:x:65534:\n");
    file(r / "etc/shadow", "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"
                           "nobody:*:20000:0:99999:7:::\nsshd:!:20000::::::\n", 0640, 0, 42);
    file(r / "etc/gshadow", "root:*::\ndaemon:*::\nsudo:*::\nshadow:*::\nnogroup:*::\n", 0640, 0, 42);
    file(r / "etc/sudoers", "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n"
                            "@includedir /etc/sudoers.d\n", 0440);
    file(r / "etc/sudoers.d/README", "# drop-ins\n", 0440);
    file(r / "etc/skel/.bashrc", "# bashrc\n");
    file(r / "etc/skel/.profile", "# profile\n");
    file(r / "etc/skel/.config/app/settings", "a=1\n", 0600);
    file(r / "etc/hosts", "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n");
    file(r / "etc/hostname", "");
    file(r / "etc/machine-id", "", 0444);
    link("../run/systemd/resolve/stub-resolv.conf", r / "etc/resolv.conf");
    file(r / "etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
    sys::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image", "-f",
                      (r / "etc/ssh/ssh_host_ed25519_key").string()});
    file(r / "etc/ssh/ssh_host_dsa_key", "baked dsa key\n", 0600);
    file(r / "etc/ssh/ssh_host_dsa_key.pub", "ssh-dss AAAAB3NzaC1kc3MAAACBAPLACEHOLDER image\n");
    for (auto u : {"systemd-networkd.service", "systemd-networkd.socket", "console-getty.service",
                   "fstrim.timer", "apt-daily.timer", "e2scrub_reap.service",
                   "systemd-update-utmp-runlevel.service", "dev-hugepages.mount"})
        file(r / "usr/lib/systemd/system" / u, "[Unit]\n");
    link("/dev/null", r / "etc/systemd/system/apt-daily.timer");  // the image's own mask
    for (auto g : {"systemd-getty-generator", "systemd-gpt-auto-generator", "systemd-debug-generator",
                   "systemd-sysv-generator"})
        file(r / "usr/lib/systemd/system-generators" / g, "#!/bin/sh\n", 0755);
    fs::create_directories(r / "etc/systemd/system-generators");
    link("/dev/null", r / "etc/systemd/system-generators/systemd-debug-generator");  // the image's
    if (o.networkd)
        link("/lib/systemd/system/systemd-networkd.service",
             r / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service");
}

// A container's overlay over a lower layer, on the scratch tmpfs.
struct Overlay {
    fs::path upper, work, merged;
    Overlay(const fs::path& base, const fs::path& lower, const std::string& name)
        : upper(base / name / "upper"), work(base / name / "work"), merged(base / name / "merged") {
        for (auto& d : {upper, work, merged}) fs::create_directories(d);
        std::string opts = fmt::format("lowerdir={},upperdir={},workdir={}", lower.string(),
                                       upper.string(), work.string());
        REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0);
    }
    ~Overlay() { ::umount2(merged.c_str(), MNT_DETACH); }
};

// A scratch tmpfs (without nodev, like a real disk) holding the lower tree and the overlays.
struct Scene {
    TempDir t;
    fs::path lower;
    std::string key;  // an authorized key line
    explicit Scene(const TreeOptions& o = {}) {
        REQUIRE(::mount("tmpfs", t.path().c_str(), "tmpfs", 0, "mode=0755") == 0);
        lower = t / "lower";
        make_tree(lower, o);
        sys::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet@host", "-f",
                          (t / "fleet_key").string()});
        key = sys::read_file(t / "fleet_key.pub");
    }
    ~Scene() { ::umount2(t.path().c_str(), MNT_DETACH); }
    fleet::ProvisionSpec spec(const std::string& name = "aplspawn10", const char* ip = "10.10.12.10") const {
        fleet::ProvisionSpec s;
        s.hostname = name;
        s.ip = *Ipv4::parse(ip);
        s.prefix = 26;
        s.gateway = *Ipv4::parse("10.10.12.1");
        s.user = "test";
        s.group = "test";
        s.authorized_key = key;
        return s;
    }
};

std::string read(const fs::path& p) { return sys::read_file(p); }
bool has_line(const std::string& text, const std::string& line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("provision writes identity, account, key and sudo into the upper layer only", "[provision]") {
    Scene s;
    auto lower_before = snapshot(s.lower);
    Overlay c(s.t.path(), s.lower, "c10");
    auto r = fleet::provision(c.merged, s.spec());
    CHECK(snapshot(s.lower) == lower_before);  // the image is never touched
    const fs::path& m = c.merged;

    CHECK(read(m / "etc/hostname") == "aplspawn10\n");
    CHECK(has_line(read(m / "etc/hosts"), "10.10.12.10\taplspawn10"));
    CHECK(has_line(read(m / "etc/hosts"), "127.0.1.1\taplspawn10"));
    CHECK(has_line(read(m / "etc/hosts"), "127.0.0.1\tlocalhost"));
    CHECK(fleet::text::is_valid_machine_id(read(m / "etc/machine-id")));
    CHECK((lstat_of(m / "etc/machine-id").mode & 07777) == 0444);

    CHECK(has_line(read(m / "etc/passwd"), "test:x:1000:1000::/home/test:/bin/bash"));
    CHECK(has_line(read(m / "etc/passwd"), "root:x:0:0:root:/root:/bin/bash"));
    CHECK(has_line(read(m / "etc/group"), "test:x:1000:"));
    CHECK(has_line(read(m / "etc/gshadow"), "test:!::"));
    auto shadow = read(m / "etc/shadow");
    CHECK(shadow.find("\ntest:*:") != std::string::npos);
    CHECK(has_line(shadow, "sshd:!:20000::::::"));
    auto sh = lstat_of(m / "etc/shadow");  // Debian's owner and mode kept
    CHECK((sh.mode & 07777) == 0640);
    CHECK(sh.gid == 42);

    auto home = lstat_of(m / "home/test");
    CHECK(S_ISDIR(home.mode));
    CHECK((home.mode & 07777) == 0700);
    CHECK(home.uid == 1000);
    CHECK(home.gid == 1000);
    CHECK(read(m / "home/test/.bashrc") == "# bashrc\n");
    CHECK(lstat_of(m / "home/test/.profile").uid == 1000);
    CHECK(read(m / "home/test/.config/app/settings") == "a=1\n");
    CHECK((lstat_of(m / "home/test/.config/app/settings").mode & 07777) == 0600);
    CHECK(lstat_of(m / "home/test/.config/app").uid == 1000);
    auto ssh_dir = lstat_of(m / "home/test/.ssh");
    CHECK((ssh_dir.mode & 07777) == 0700);
    CHECK(ssh_dir.uid == 1000);
    auto ak = lstat_of(m / "home/test/.ssh/authorized_keys");
    CHECK((ak.mode & 07777) == 0600);
    CHECK(ak.uid == 1000);
    CHECK(ak.gid == 1000);
    CHECK(read(m / "home/test/.ssh/authorized_keys") == s.key);

    CHECK(r.has_sudo);
    auto dropin = m / "etc/sudoers.d/aplspawn-test";
    CHECK(has_line(read(dropin), "test ALL=(ALL:ALL) NOPASSWD: ALL"));
    auto di = lstat_of(dropin);
    CHECK((di.mode & 07777) == 0440);
    CHECK(di.uid == 0);
    if (sys::find_program("visudo")) CHECK(sys::run({"visudo", "-c", "-f", dropin.string()}).ok());
    CHECK(read(m / "etc/sudoers") == read(s.lower / "etc/sudoers"));  // already had @includedir

    // No resolver asked for: the image's own symlink stays.
    CHECK(fs::read_symlink(m / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf");
    auto nd = read(m / "etc/systemd/network/10-aplspawn-host0.network");
    CHECK(nd.find("Address=10.10.12.10/26\nGateway=10.10.12.1\n") != std::string::npos);
    // aplspawn's Python for Ansible (it runs the image's python3), root's, executable by all.
    CHECK(r.python_interpreter == fleet::kAnsiblePython);
    const fs::path ours = m / std::string(fleet::kAnsiblePython).substr(1);
    CHECK(read(ours).starts_with("#!/usr/bin/python3\n"));
    CHECK_THAT(read(ours), Contains("class PayloadImporter(zipimport.zipimporter)"));
    auto ai = lstat_of(ours);
    CHECK((ai.mode & 07777) == 0755);
    CHECK(ai.uid == 0);

    // Host keys: one per default type (ed25519, ecdsa; rsa is opt-in), fresh (the image's baked
    // ed25519 key replaced, its DSA key gone, no RSA key), private 0600 and matching the public half.
    const auto& types = s.spec().host_key_types;
    REQUIRE(types == std::vector<std::string>{"ed25519", "ecdsa"});
    REQUIRE(r.host_public_keys.size() == 2);
    CHECK(r.host_public_keys[0].starts_with("ssh-ed25519 "));
    CHECK(r.host_public_keys[1].starts_with("ecdsa-sha2-nistp256 "));
    CHECK_FALSE(fs::exists(fs::symlink_status(m / "etc/ssh/ssh_host_rsa_key")));
    auto baked = fleet::text::public_key_id(read(s.lower / "etc/ssh/ssh_host_ed25519_key.pub"));
    CHECK(r.host_public_keys[0] != baked);
    CHECK_FALSE(fs::exists(fs::symlink_status(m / "etc/ssh/ssh_host_dsa_key")));
    CHECK_FALSE(fs::exists(fs::symlink_status(m / "etc/ssh/ssh_host_dsa_key.pub")));
    for (size_t i = 0; i < types.size(); ++i) {
        auto priv = m / fmt::format("etc/ssh/ssh_host_{}_key", types[i]);
        CHECK((lstat_of(priv).mode & 07777) == 0600);
        CHECK((lstat_of(priv.string() + ".pub").mode & 07777) == 0644);
        auto derived = sys::run_checked({"ssh-keygen", "-y", "-f", priv.string()}).out;
        CHECK(fleet::text::public_key_id(derived) == r.host_public_keys[i]);
    }
    CHECK_THAT(fmt::format("{}", fmt::join(r.notes, "\n")), Contains("replaced the image's SSH host key"));

    // The record, and no temp file anywhere.
    auto rec = fleet::text::parse_record(read(m / "var/lib/aplspawn/provision"));
    CHECK(rec.hostname == "aplspawn10");
    CHECK(rec.host_keys == r.host_public_keys);
    for (auto& [path, v] : snapshot(c.upper)) CHECK(path.find(".aplspawn-") == std::string::npos);
    CHECK(r.change() == Change::changed);
}

TEST_CASE("a second provision changes nothing: same bytes, times, host keys, machine-id", "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c10");
    auto spec = s.spec();
    spec.user_password = "user pw";
    spec.root_password = "root pw";
    spec.dns = *Ipv4::parse("10.10.12.1");
    auto first = fleet::provision(c.merged, spec);
    auto before = snapshot(c.upper);
    auto second = fleet::provision(c.merged, spec);
    CHECK(second.changes == std::vector<std::string>{});
    CHECK(second.change() == Change::unchanged);
    CHECK(second.host_public_keys == first.host_public_keys);
    CHECK(second.has_sudo == first.has_sudo);
    CHECK(snapshot(c.upper) == before);

    // After a remount (stop, spawn): still nothing.
    ::umount2(c.merged.c_str(), 0);
    Overlay again(s.t.path(), s.lower, "c10");
    auto third = fleet::provision(again.merged, spec);
    CHECK(third.change() == Change::unchanged);
    CHECK(snapshot(again.upper) == before);
}

TEST_CASE("every container gets its own host keys and machine-id", "[provision]") {
    Scene s;
    Overlay a(s.t.path(), s.lower, "a"), b(s.t.path(), s.lower, "b");
    auto ra = fleet::provision(a.merged, s.spec("aplspawn10", "10.10.12.10"));
    auto rb = fleet::provision(b.merged, s.spec("aplspawn11", "10.10.12.11"));
    for (size_t i = 0; i < ra.host_public_keys.size(); ++i)
        CHECK(ra.host_public_keys[i] != rb.host_public_keys[i]);
    CHECK(read(a.merged / "etc/machine-id") != read(b.merged / "etc/machine-id"));
    CHECK(read(b.merged / "etc/hostname") == "aplspawn11\n");

    // An upper layer carried over to another name (or an image built from one) is not trusted:
    // new identity.
    auto moved = fleet::provision(a.merged, s.spec("aplspawn12", "10.10.12.12"));
    CHECK(moved.host_public_keys[0] != ra.host_public_keys[0]);
    CHECK(has_line(read(a.merged / "etc/hosts"), "10.10.12.12\taplspawn12"));
}

TEST_CASE("host key types follow the spec: RSA when asked, in its order, a dropped type removed",
          "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c10");
    auto spec = s.spec();
    spec.host_key_types = {"rsa", "ed25519"};
    auto with_rsa = fleet::provision(c.merged, spec);
    REQUIRE(with_rsa.host_public_keys.size() == 2);
    CHECK(with_rsa.host_public_keys[0].starts_with("ssh-rsa "));
    CHECK(with_rsa.host_public_keys[1].starts_with("ssh-ed25519 "));
    CHECK_FALSE(fs::exists(fs::symlink_status(c.merged / "etc/ssh/ssh_host_ecdsa_key")));

    // Without rsa: the RSA key goes, the ed25519 key stays, an ecdsa key is made.
    spec.host_key_types = {"ed25519", "ecdsa"};
    auto back = fleet::provision(c.merged, spec);
    REQUIRE(back.host_public_keys.size() == 2);
    CHECK(back.host_public_keys[0] == with_rsa.host_public_keys[1]);
    CHECK(back.host_public_keys[1].starts_with("ecdsa-sha2-nistp256 "));
    CHECK_FALSE(fs::exists(fs::symlink_status(c.merged / "etc/ssh/ssh_host_rsa_key")));
    CHECK_FALSE(fs::exists(fs::symlink_status(c.merged / "etc/ssh/ssh_host_rsa_key.pub")));
    CHECK(std::find(back.changes.begin(), back.changes.end(),
                    "removed /etc/ssh/ssh_host_rsa_key (not a type of cntCommon.hostKeyTypes)") !=
          back.changes.end());

    spec.host_key_types = {"dsa"};
    CHECK_THROWS_WITH(fleet::provision(c.merged, spec), Contains("'dsa' is not an SSH host key type"));
}

TEST_CASE("an image's baked-in or uninitialized machine-id is never kept", "[provision]") {
    Scene s;
    const std::string baked = "0123456789abcdef0123456789abcdef";
    SECTION("a valid id in the image") { file(s.lower / "etc/machine-id", baked + "\n", 0444); }
    SECTION("uninitialized") { file(s.lower / "etc/machine-id", "uninitialized\n", 0444); }
    SECTION("missing") { fs::remove(s.lower / "etc/machine-id"); }
    Overlay a(s.t.path(), s.lower, "a"), b(s.t.path(), s.lower, "b");
    fleet::provision(a.merged, s.spec("aplspawn10", "10.10.12.10"));
    fleet::provision(b.merged, s.spec("aplspawn11", "10.10.12.11"));
    const std::string ida = read(a.merged / "etc/machine-id"), idb = read(b.merged / "etc/machine-id");
    CHECK(fleet::text::is_valid_machine_id(ida));
    CHECK(fleet::text::is_valid_machine_id(idb));
    CHECK(ida != baked + "\n");
    CHECK(ida != idb);
    // Its own id survives a respawn.
    CHECK(fleet::provision(a.merged, s.spec("aplspawn10", "10.10.12.10")).change() == Change::unchanged);
    CHECK(read(a.merged / "etc/machine-id") == ida);
}

TEST_CASE("kill -9 during key generation leaves no key on the host, the next provision cleans up",
          "[provision]") {
    private_tmp();  // where a host-side temporary directory would be left
    const auto tmp_before = snapshot("/tmp");
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    const fs::path staging = c.merged / "etc/ssh/.aplspawn-keygen";
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    auto spec = s.spec();
    spec.host_key_types = {"ed25519", "ecdsa", "rsa"};  // with RSA, slow enough to be caught at it
    if (child == 0) {
        try {
            fleet::provision(c.merged, spec);
        } catch (...) {
        }
        ::_exit(0);
    }
    // ssh-keygen processes in the test's pid namespace.
    auto keygens = [] {
        int n = 0;
        for (auto& e : fs::directory_iterator("/proc")) try {
                if (sys::read_file_if_exists(e.path() / "comm").value_or("") == "ssh-keygen\n") ++n;
            } catch (const Error&) {  // gone while read
            }
        return n;
    };
    // Killed while ssh-keygen runs (RSA takes a few hundred ms).
    bool seen = false;
    for (int i = 0; i < 30000 && !seen; ++i) {
        seen = keygens() > 0;
        if (!seen) ::usleep(1000);
    }
    const bool alive = ::waitpid(child, nullptr, WNOHANG) == 0;
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    REQUIRE(seen);
    REQUIRE(alive);
    // The orphaned ssh-keygen runs end on their own (bounded wait).
    CHECK(eventually([&] { return keygens() == 0; }, std::chrono::seconds(30)));
    CHECK(snapshot("/tmp") == tmp_before);  // no key, no directory on the host
    const bool left = fs::exists(fs::symlink_status(staging));

    auto r = fleet::provision(c.merged, spec);
    CHECK_FALSE(fs::exists(fs::symlink_status(staging)));
    REQUIRE(r.host_public_keys.size() == 3);
    if (left)
        CHECK(std::find(r.changes.begin(), r.changes.end(),
                        "removed /etc/ssh/.aplspawn-keygen (left by an interrupted run)") != r.changes.end());
    for (size_t i = 0; i < spec.host_key_types.size(); ++i) {
        auto priv = c.merged / fmt::format("etc/ssh/ssh_host_{}_key", spec.host_key_types[i]);
        auto derived = sys::run_checked({"ssh-keygen", "-y", "-f", priv.string()}).out;
        CHECK(fleet::text::public_key_id(derived) == r.host_public_keys[i]);
    }
    CHECK(fleet::provision(c.merged, spec).change() == Change::unchanged);
    ::umount2("/tmp", MNT_DETACH);
}

TEST_CASE("passwords are stored as yescrypt hashes, kept while they match", "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    auto spec = s.spec();
    spec.user_password = "Secret-User-1";
    spec.root_password = "Secret-Root-1";
    auto first = fleet::provision(c.merged, spec);
    auto shadow = read(c.merged / "etc/shadow");
    auto field = [&](const std::string& text, const std::string& user) {
        auto at = ("\n" + text).find("\n" + user + ":");
        REQUIRE(at != std::string::npos);
        auto line = text.substr(at, text.find('\n', at) - at);
        auto a = line.find(':') + 1;
        return line.substr(a, line.find(':', a) - a);
    };
    auto user_hash = field(shadow, "test"), root_hash = field(shadow, "root");
    CHECK(user_hash.starts_with("$y$"));
    CHECK(root_hash.starts_with("$y$"));
    CHECK(fleet::password::matches("Secret-User-1", user_hash));
    CHECK(fleet::password::matches("Secret-Root-1", root_hash));
    for (auto& [path, v] : snapshot(c.upper)) {
        CHECK(v.find("Secret-User-1") == std::string::npos);
        CHECK(v.find("Secret-Root-1") == std::string::npos);
    }
    // Nor in what provisioning reports (spawn prints changes with -v and notes as INFO lines).
    auto said = fmt::format("{}\n{}", fmt::join(first.changes, "\n"), fmt::join(first.notes, "\n"));
    CHECK(said.find("Secret-") == std::string::npos);
    CHECK_THAT(said, Contains("wrote /etc/shadow"));
    // Same passwords: the hashes stay (no new salt). A new one: rehashed.
    fleet::provision(c.merged, spec);
    CHECK(field(read(c.merged / "etc/shadow"), "test") == user_hash);
    spec.user_password = "Secret-User-2";
    auto r = fleet::provision(c.merged, spec);
    auto now = field(read(c.merged / "etc/shadow"), "test");
    CHECK(now != user_hash);
    CHECK(fleet::password::matches("Secret-User-2", now));
    CHECK(field(read(c.merged / "etc/shadow"), "root") == root_hash);
    CHECK(r.changes == std::vector<std::string>{"wrote /etc/shadow"});
}

TEST_CASE("an image user in another group joins it, and an image without shadow files gets one",
          "[provision]") {
    Scene s;
    file(s.lower / "etc/passwd", read(s.lower / "etc/passwd") + "test:x:1200:27::/srv/test:/bin/sh\n");
    fs::remove(s.lower / "etc/shadow");
    fs::remove(s.lower / "etc/gshadow");
    Overlay c(s.t.path(), s.lower, "c");
    auto spec = s.spec();
    spec.group = "ops";
    fleet::provision(c.merged, spec);
    CHECK(has_line(read(c.merged / "etc/passwd"), "test:x:1200:27::/srv/test:/bin/sh"));
    CHECK(has_line(read(c.merged / "etc/group"), "ops:x:1000:test"));
    CHECK_FALSE(fs::exists(c.merged / "etc/gshadow"));
    CHECK_FALSE(fs::exists(c.merged / "etc/shadow"));  // no password asked for, none invented
    CHECK(lstat_of(c.merged / "srv/test").uid == 1200);
    CHECK(lstat_of(c.merged / "srv/test/.ssh/authorized_keys").gid == 1000);

    spec.root_password = "pw";
    fleet::provision(c.merged, spec);
    auto sh = lstat_of(c.merged / "etc/shadow");
    CHECK((sh.mode & 07777) == 0640);
    CHECK(sh.gid == 42);
    CHECK(read(c.merged / "etc/shadow").starts_with("root:$y$"));
}

TEST_CASE("resolv.conf: dnsAddress replaces the image's symlink, bindHostResolve copies the host's",
          "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    auto spec = s.spec();
    SECTION("dnsAddress") {
        spec.dns = *Ipv4::parse("192.0.2.1");
        spec.host_resolv = true;  // dnsAddress wins
        fleet::provision(c.merged, spec);
        CHECK_FALSE(fs::is_symlink(c.merged / "etc/resolv.conf"));
        CHECK(fleet::text::nameservers(read(c.merged / "etc/resolv.conf")) == std::vector<std::string>{"192.0.2.1"});
        CHECK(read(c.merged / "etc/systemd/network/10-aplspawn-host0.network").find("DNS=192.0.2.1\n") !=
              std::string::npos);
    }
    SECTION("the host runs systemd-resolved: its upstream servers, not the stub") {
        file(s.t / "host-resolv", "nameserver 127.0.0.53\noptions edns0\n");
        REQUIRE(::mount((s.t / "host-resolv").c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) == 0);
        file("/run/systemd/resolve/resolv.conf", "nameserver 192.0.2.53\nsearch example\n");
        spec.host_resolv = true;
        auto r = fleet::provision(c.merged, spec);
        ::umount2("/etc/resolv.conf", MNT_DETACH);
        auto got = read(c.merged / "etc/resolv.conf");
        CHECK(fleet::text::nameservers(got) == std::vector<std::string>{"192.0.2.53"});
        CHECK(got.find("search example") != std::string::npos);
        CHECK_THAT(fmt::format("{}", fmt::join(r.notes, "\n")), !Contains("loopback") && !Contains("resolve"));
    }
    SECTION("a host without /etc/resolv.conf: the image's is kept, with a note") {
        sys::run_checked({"cp", "-a", "/etc", (s.t / "host-etc").string()});
        fs::remove(s.t / "host-etc/resolv.conf");
        REQUIRE(::mount((s.t / "host-etc").c_str(), "/etc", nullptr, MS_BIND, nullptr) == 0);
        spec.host_resolv = true;
        auto r = fleet::provision(c.merged, spec);
        ::umount2("/etc", MNT_DETACH);
        CHECK(fs::read_symlink(c.merged / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf");
        CHECK_THAT(fmt::format("{}", fmt::join(r.notes, "\n")), Contains("the host has no /etc/resolv.conf"));
    }
    SECTION("a host resolver on loopback is reported") {
        file(s.t / "host-resolv", "nameserver 127.0.0.1\n");
        REQUIRE(::mount((s.t / "host-resolv").c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) == 0);
        spec.host_resolv = true;
        auto r = fleet::provision(c.merged, spec);
        ::umount2("/etc/resolv.conf", MNT_DETACH);
        CHECK_THAT(fmt::format("{}", fmt::join(r.notes, "\n")), Contains("nameserver 127.0.0.1 is on its loopback"));
    }
}

TEST_CASE("full, the default, masks what never works in a container, and lean adds to it", "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    auto spec = s.spec();
    const fs::path etc = c.merged / "etc/systemd/system";
    const fs::path gen = c.merged / "etc/systemd/system-generators";
    auto record = [&] { return fleet::text::parse_record(read(c.merged / "var/lib/aplspawn/provision")); };
    using V = std::vector<std::string>;

    fleet::provision(c.merged, spec);  // full
    for (auto u : {"console-getty.service", "dev-hugepages.mount"})
        CHECK(fs::read_symlink(etc / u) == "/dev/null");
    for (auto g : {"systemd-getty-generator", "systemd-gpt-auto-generator"})
        CHECK(fs::read_symlink(gen / g) == "/dev/null");
    for (auto u : {"fstrim.timer", "e2scrub_reap.service", "systemd-update-utmp-runlevel.service",
                   "systemd-remount-fs.service"})  // lean's; not in this image
        CHECK_FALSE(fs::exists(fs::symlink_status(etc / u)));
    CHECK_FALSE(fs::exists(fs::symlink_status(gen / "systemd-sysv-generator")));  // never masked
    CHECK(record().masked == V{"dev-hugepages.mount", "console-getty.service"});
    // The image's own masks are its own: not on aplspawn's record.
    CHECK(record().masked_generators == V{"systemd-getty-generator", "systemd-gpt-auto-generator"});
    CHECK(fs::read_symlink(gen / "systemd-debug-generator") == "/dev/null");
    CHECK(fleet::provision(c.merged, spec).change() == Change::unchanged);

    spec.profile = config::BootProfile::lean;
    fleet::provision(c.merged, spec);
    for (auto u : {"console-getty.service", "dev-hugepages.mount", "fstrim.timer", "e2scrub_reap.service",
                   "systemd-update-utmp-runlevel.service"})
        CHECK(fs::read_symlink(etc / u) == "/dev/null");
    CHECK_FALSE(fs::exists(fs::symlink_status(etc / "man-db.timer")));  // not in this image
    auto rec = record();
    CHECK(std::find(rec.masked.begin(), rec.masked.end(), "apt-daily.timer") == rec.masked.end());
    CHECK(rec.masked.size() == 5);
    CHECK(rec.masked_generators.size() == 2);
    CHECK(fleet::provision(c.merged, spec).change() == Change::unchanged);

    // Back to full: lean's own masks go, full's stay, the image's own mask stays.
    spec.profile = config::BootProfile::full;
    auto r = fleet::provision(c.merged, spec);
    CHECK(r.changes.size() == 4);  // 3 unmasked + the record
    for (auto u : {"fstrim.timer", "e2scrub_reap.service", "systemd-update-utmp-runlevel.service"})
        CHECK_FALSE(fs::exists(fs::symlink_status(etc / u)));
    CHECK(fs::read_symlink(etc / "console-getty.service") == "/dev/null");
    CHECK(fs::read_symlink(etc / "apt-daily.timer") == "/dev/null");
    CHECK(record().masked == V{"dev-hugepages.mount", "console-getty.service"});
}

TEST_CASE("a container provisioned before full masked anything gets full's masks, keeps its others",
          "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    auto spec = s.spec();
    spec.profile = config::BootProfile::lean;
    fleet::provision(c.merged, spec);
    // What a lean provision by an older aplspawn recorded: bare unit names, no generators.
    file(c.merged / "var/lib/aplspawn/provision",
                    "hostname aplspawn10\nmasked console-getty.service\nmasked fstrim.timer\n");
    fs::remove(c.merged / "etc/systemd/system-generators/systemd-getty-generator");
    spec.profile = config::BootProfile::full;
    fleet::provision(c.merged, spec);
    const fs::path etc = c.merged / "etc/systemd/system";
    CHECK_FALSE(fs::exists(fs::symlink_status(etc / "fstrim.timer")));
    CHECK(fs::read_symlink(etc / "console-getty.service") == "/dev/null");
    CHECK(fs::read_symlink(c.merged / "etc/systemd/system-generators/systemd-getty-generator") == "/dev/null");
    // Masked by the lean run, but no record says it was aplspawn's: left as it is.
    CHECK(fs::read_symlink(etc / "e2scrub_reap.service") == "/dev/null");
}

TEST_CASE("no networkd file when the image does not enable networkd, or in script mode", "[provision]") {
    SECTION("networkd installed, not enabled") {
        Scene s(TreeOptions{.networkd = false});
        Overlay c(s.t.path(), s.lower, "c");
        fleet::provision(c.merged, s.spec());
        CHECK_FALSE(fs::exists(c.merged / "etc/systemd/network"));
    }
    SECTION("script mode") {
        Scene s;
        Overlay c(s.t.path(), s.lower, "c");
        auto spec = s.spec();
        spec.mode = config::StartMode::script;
        fleet::provision(c.merged, spec);
        CHECK_FALSE(fs::exists(c.merged / "etc/systemd/network"));
    }
    SECTION("networkd masked") {
        Scene s;
        link("/dev/null", s.lower / "etc/systemd/system/systemd-networkd.service");
        Overlay c(s.t.path(), s.lower, "c");
        fleet::provision(c.merged, s.spec());
        CHECK_FALSE(fs::exists(c.merged / "etc/systemd/network"));
    }
}

TEST_CASE("a bad spec is refused before anything is written", "[provision]") {
    Scene s;
    Overlay c(s.t.path(), s.lower, "c");
    auto before = snapshot(c.upper);
    auto spec = s.spec();
    SECTION("no key") {
        spec.authorized_key = "# nothing\n";
        CHECK_THROWS_WITH(fleet::provision(c.merged, spec), Contains("holds no public key line"));
    }
    SECTION("user name with a colon") {
        spec.user = "a:0:0";
        CHECK_THROWS_WITH(fleet::provision(c.merged, spec), Contains("'a:0:0' is not a valid user name"));
    }
    SECTION("root as the fleet's user") {
        spec.user = "root";
        CHECK_THROWS_WITH(fleet::provision(c.merged, spec), Contains("cannot be root"));
    }
    CHECK(snapshot(c.upper) == before);
}

TEST_CASE("hostile symlinks in a Debian-like image never lead onto the host", "[provision][evil]") {
    private_tmp();
    for (auto d : {"/tmp/HOSTPWN_home", "/tmp/HOSTPWN_chown", "/tmp/HOSTPWN_sudoers", "/tmp/HOSTPWN_etcssh"}) {
        fs::create_directories(d);
        fs::permissions(d, fs::perms(0755));
    }
    file("/tmp/HOSTPWN_hostname", "host's own\n");
    file("/tmp/HOSTPWN_hosts", "host's hosts\n");
    file("/tmp/HOSTPWN_keys", "host's keys\n");
    auto host_before = snapshot("/tmp");
    Scene s;  // its files live under /run, not /tmp
    const fs::path& l = s.lower;
    auto provision = [&] {
        Overlay c(s.t.path(), l, "c");
        return fleet::provision(c.merged, s.spec());
    };

    SECTION("files: /etc/hostname, /etc/hosts, authorized_keys are replaced, never followed") {
        fs::remove(l / "etc/hostname");
        link("/tmp/HOSTPWN_hostname", l / "etc/hostname");
        fs::remove(l / "etc/hosts");
        link("../../../../tmp/HOSTPWN_hosts", l / "etc/hosts");
        fs::create_directories(l / "home/test/.ssh");
        link("/tmp/HOSTPWN_keys", l / "home/test/.ssh/authorized_keys");
        Overlay c(s.t.path(), l, "c");
        fleet::provision(c.merged, s.spec());
        CHECK(read(c.merged / "etc/hostname") == "aplspawn10\n");
        CHECK_FALSE(fs::is_symlink(c.merged / "etc/hostname"));
        CHECK(has_line(read(c.merged / "etc/hosts"), "127.0.0.1\tlocalhost"));  // a fresh one
        CHECK(read(c.merged / "home/test/.ssh/authorized_keys") == s.key);
    }
    SECTION("links to secrets inside the root: replaced, their targets never copied") {
        fs::remove(l / "etc/hosts");
        link("/etc/shadow", l / "etc/hosts");
        fs::create_directories(l / "home/test/.ssh");
        link("../../../etc/shadow", l / "home/test/.ssh/authorized_keys");
        Overlay c(s.t.path(), l, "c");
        fleet::provision(c.merged, s.spec());
        CHECK_FALSE(fs::is_symlink(c.merged / "etc/hosts"));
        CHECK(read(c.merged / "etc/hosts").find("root:") == std::string::npos);
        CHECK(has_line(read(c.merged / "etc/hosts"), "127.0.0.1\tlocalhost"));
        CHECK(read(c.merged / "home/test/.ssh/authorized_keys") == s.key);
        CHECK(read(c.merged / "etc/shadow").starts_with("root:*:"));  // the target untouched
    }
    SECTION("a link where the host keys are staged is removed, never followed") {
        link("/etc", l / "etc/ssh/.aplspawn-keygen");
        Overlay c(s.t.path(), l, "c");
        auto r = fleet::provision(c.merged, s.spec());
        CHECK_FALSE(fs::exists(fs::symlink_status(c.merged / "etc/ssh/.aplspawn-keygen")));
        CHECK(read(c.merged / "etc/passwd").starts_with("root:x:0:0:"));  // its target untouched
        CHECK(r.host_public_keys.size() == 2);  // the default types: ed25519, ecdsa
    }
    SECTION("/home leads out: a clear error") {
        fs::remove(l / "home");
        link("/tmp/HOSTPWN_home", l / "home");
        CHECK_THROWS_WITH(provision(), Contains("provision aplspawn10 (") &&
                                           Contains("create directory /home/test: /home is a symlink to "
                                                    "/tmp/HOSTPWN_home, which does not lead to a "
                                                    "directory inside the container root"));
    }
    SECTION("the home directory itself leads out: never chowned") {
        link("../../../../../tmp/HOSTPWN_chown", l / "home/test");
        CHECK_THROWS_WITH(provision(), Contains("/home/test is a symlink to ../../../../../tmp/HOSTPWN_chown"));
    }
    SECTION("/etc/sudoers.d leads out") {
        fs::remove_all(l / "etc/sudoers.d");
        link("/tmp/HOSTPWN_sudoers", l / "etc/sudoers.d");
        CHECK_THROWS_WITH(provision(), Contains("/etc/sudoers.d is a symlink to /tmp/HOSTPWN_sudoers"));
    }
    SECTION("/etc/ssh leads out") {
        fs::remove_all(l / "etc/ssh");
        link("/tmp/HOSTPWN_etcssh", l / "etc/ssh");
        CHECK_THROWS_WITH(provision(), Contains("/etc/ssh is a symlink to /tmp/HOSTPWN_etcssh"));
    }
    SECTION("the same links with targets inside the root are followed there") {
        fs::remove(l / "home");
        link("/tmp/HOSTPWN_home", l / "home");
        fs::remove_all(l / "etc/ssh");
        link("../../tmp/HOSTPWN_etcssh", l / "etc/ssh");
        fs::remove_all(l / "etc/sudoers.d");
        link("/tmp/HOSTPWN_sudoers", l / "etc/sudoers.d");
        for (auto d : {"tmp/HOSTPWN_home", "tmp/HOSTPWN_etcssh", "tmp/HOSTPWN_sudoers"})
            fs::create_directories(l / d);
        Overlay c(s.t.path(), l, "c");
        auto r = fleet::provision(c.merged, s.spec());
        CHECK(read(c.merged / "tmp/HOSTPWN_home/test/.ssh/authorized_keys") == s.key);
        CHECK(lstat_of(c.merged / "tmp/HOSTPWN_home/test").uid == 1000);
        CHECK(fs::exists(c.merged / "tmp/HOSTPWN_etcssh/ssh_host_ed25519_key"));
        CHECK(fs::exists(c.merged / "tmp/HOSTPWN_sudoers/aplspawn-test"));
        CHECK(r.has_sudo);
    }
    SECTION("a FIFO or a device node as an account file is refused, not opened") {
        fs::remove(l / "etc/passwd");
        REQUIRE(::mkfifo((l / "etc/passwd").c_str(), 0644) == 0);
        CHECK_THROWS_WITH(provision(), Contains("read /etc/passwd: it is a FIFO, not a regular file"));
        fs::remove(l / "etc/passwd");
        REQUIRE(::mknod((l / "etc/passwd").c_str(), S_IFCHR | 0644, makedev(1, 5)) == 0);  // /dev/zero
        CHECK_THROWS_WITH(provision(), Contains("read /etc/passwd: it is a character device"));
    }
    // Whatever happened, the host's files are as they were (bytes, modes, owners, times).
    CHECK(snapshot("/tmp") == host_before);
    ::umount2("/tmp", MNT_DETACH);
}

TEST_CASE("make-test-image --evil through a loop mount writes nothing on the host", "[provision][evil]") {
    // The source tree may live under /tmp (a CI clone), which private_tmp() hides: take the tool along.
    TempDir tools;
    fs::copy_file(fs::path(APLSPAWN_SOURCE_DIR) / "tests/fixtures/make-test-image", tools / "make-test-image");
    private_tmp();
    for (auto d : {"/tmp/HOSTPWN_ssh", "/tmp/HOSTPWN_home", "/tmp/HOSTPWN_sudoers", "/tmp/HOSTPWN_etcssh"})
        fs::create_directories(d);
    file("/tmp/HOSTPWN_hostname", "host's own\n");
    auto host_before = snapshot("/tmp");

    TempDir t;
    REQUIRE(::mount("tmpfs", t.path().c_str(), "tmpfs", 0, "mode=0755") == 0);
    sys::RunOptions o;
    o.timeout = std::chrono::seconds(120);
    o.env = {"TMPDIR=" + t.path().string()};
    sys::run_checked({(tools / "make-test-image").string(), "--out",
                      (t / "evil.img").string(), "--layout", "bare", "--evil"},
                     o);
    fs::create_directories(t / "lower");
    sys::run_checked({"mount", "-t", "squashfs", "-o", "ro,loop", (t / "evil.img").string(), (t / "lower").string()});
    REQUIRE(fs::read_symlink(t / "lower/home") == "/../../../tmp/HOSTPWN_home");

    fleet::ProvisionSpec spec;
    spec.hostname = "aplspawn10";
    spec.ip = *Ipv4::parse("10.77.0.10");
    spec.prefix = 24;
    spec.gateway = *Ipv4::parse("10.77.0.1");
    spec.user = spec.group = "test";
    spec.authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9QGRlV10jLKYGxup8HHE88TEJqVAqgO/lEwcYs8eSD k\n";
    {
        Overlay c(t.path(), t / "lower", "c");
        // As the image is: /home leads nowhere inside it. A clear error.
        CHECK_THROWS_WITH(fleet::provision(c.merged, spec),
                          Contains("/home is a symlink to /../../../tmp/HOSTPWN_home, which does not "
                                   "lead to a directory inside the container root"));
        CHECK(read(c.merged / "etc/hostname") == "aplspawn10\n");  // the symlink was replaced
        // Given the link targets inside the container, every write lands there.
        for (auto d : {"tmp/HOSTPWN_home", "tmp/HOSTPWN_etcssh", "tmp/HOSTPWN_ssh", "tmp/HOSTPWN_sudoers"})
            fs::create_directories(c.merged / d);
        auto r = fleet::provision(c.merged, spec);
        CHECK(r.host_public_keys.size() == 2);  // the default types: ed25519, ecdsa
        CHECK_FALSE(r.has_sudo);  // busybox: no sudo
        CHECK(r.python_interpreter.empty());
        CHECK(fs::exists(c.merged / "tmp/HOSTPWN_home/test/.ssh/authorized_keys"));
        CHECK(fs::exists(c.merged / "tmp/HOSTPWN_etcssh/ssh_host_ed25519_key"));
        CHECK(has_line(read(c.merged / "etc/passwd"), "test:x:1000:1000::/home/test:/bin/sh"));
    }
    CHECK(snapshot("/tmp") == host_before);
    ::umount2((t / "lower").c_str(), MNT_DETACH);
    ::umount2(t.path().c_str(), MNT_DETACH);
    ::umount2("/tmp", MNT_DETACH);
}
