// The pure parts of the fleet (issue 5): root partition choice, mountinfo parsing, overlay and
// nspawn arguments, known_hosts edits, script mode's variables, stray nspawn detection, ordered
// parallel reporting.
#include "aplspawn/config.hpp"
#include "aplspawn/fleet/host_limits.hpp"
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/known_hosts.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/ssh.hpp"
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/mount.hpp"

#include <sys/resource.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

using namespace aplspawn;
using namespace std::string_literals;

namespace {

constexpr std::string_view kRootX86 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
constexpr std::string_view kEsp = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
constexpr std::string_view kSwap = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";

image::PartitionEntry part(int n, std::string_view type, std::string name = "",
                           std::string label = "", std::uint64_t flags = 0) {
    image::PartitionEntry p;
    p.number = n;
    p.type = std::string(type);
    p.name = std::move(name);
    p.label = std::move(label);
    p.fstype = "squashfs";
    p.offset = static_cast<std::uint64_t>(n) << 20;
    p.size = 1 << 20;
    p.flags = flags;
    return p;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

config::Config test_config(std::string_view extra = "") {
    std::string yaml = R"(bridge:
  name: br-test
  address: 10.77.0.1
  netPrefix: 24
path:
  workingDirectory: /srv/apl
image:
  os: debian
  release: bookworm
  repo: /srv/repo
cntVariables:
  userName: test
  dnsAddress: 10.77.0.1
  sshPublicKeyPath: /srv/apl/key.pub
cntCommon:
  amount: 2
  sshPrivateKeyPath: /srv/apl/key
  ipRange: [10.77.0.10, 10.77.0.20]
  homePath: /srv/machines
)" + std::string(extra);
    return config::parse(yaml, "/srv/conf/aplspawn.yaml");
}

}  // namespace

TEST_CASE("root partition: DPS type first, then named/labelled root, then the single Linux one",
          "[fleet][disk]") {
    using image::choose_root;
    const std::string_view linux_fs = image::kLinuxFilesystemType;
    // 1. The architecture's root type wins over a partition named root.
    CHECK(choose_root({part(1, linux_fs, "root"), part(2, kRootX86)}, kRootX86) == 1u);
    // ... unless it carries the no-auto flag.
    CHECK(choose_root({part(1, kRootX86, "", "", 1ull << 63), part(2, linux_fs, "root")}, kRootX86) ==
          1u);
    // 2. Named or labelled root beats a decoy Linux partition.
    CHECK(choose_root({part(1, linux_fs, "data"), part(2, linux_fs, "root")}, kRootX86) == 1u);
    CHECK(choose_root({part(1, linux_fs, "data"), part(2, linux_fs, "", "root")}, kRootX86) == 1u);
    // 3. The only Linux filesystem partition, next to an ESP.
    CHECK(choose_root({part(1, kEsp), part(2, linux_fs)}, kRootX86) == 1u);
    // MBR's Linux type counts as a Linux filesystem partition.
    CHECK(choose_root({part(1, "0x83")}, kRootX86) == 0u);
    // Nothing usable: swap or ESP only, or two unnamed Linux partitions.
    auto none = choose_root({part(1, kSwap)}, kRootX86);
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error(), Catch::Contains("swap") && Catch::Contains("0 Linux filesystem"));
    CHECK_FALSE(choose_root({part(1, kEsp)}, kRootX86));
    auto two = choose_root({part(1, linux_fs), part(2, linux_fs)}, kRootX86);
    REQUIRE_FALSE(two);
    CHECK_THAT(two.error(), Catch::Contains("2 Linux filesystem partitions"));
    // A root partition of another architecture is not ours.
    CHECK_FALSE(choose_root({part(1, "b921b045-1df0-41c3-af44-4c6f280d3fae")}, kRootX86));
}

TEST_CASE("filesystems aplspawn mounts as the lower layer", "[fleet][disk]") {
    for (auto t : {"squashfs", "erofs", "ext4", "ext2", "btrfs", "xfs"}) CHECK(image::supported_fstype(t));
    for (auto t : {"vfat", "swap", "ntfs", "iso9660", ""}) CHECK_FALSE(image::supported_fstype(t));
    image::RootPartition p;
    p.fstype = "ext3";
    CHECK(p.mount_type() == "ext4");
    CHECK(p.mount_data() == "noload");
    p.fstype = "squashfs";
    CHECK(p.mount_data().empty());
}

TEST_CASE("mountinfo: fields, octal escapes, optional fields, overlay options", "[fleet][sys]") {
    std::string text =
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "95 22 7:3 / /srv/apl/lower/debian\\040x ro,relatime shared:50 master:2 - squashfs "
        "/dev/loop3 ro,errors=continue\n"
        "96 22 0:61 / /srv/machines/aplspawn10 rw,relatime - overlay overlay "
        "rw,lowerdir=/srv/apl/lower/a\\054b,upperdir=/srv/apl/upper/aplspawn10,workdir=/srv/apl/"
        "work/aplspawn10,index=off\n"
        "garbage line\n"
        "97 22 0:61 / /srv/machines/aplspawn10 rw - overlay overlay rw\n";
    auto m = sys::parse_mountinfo(text);
    REQUIRE(m.size() == 4);
    CHECK(m[1].mount_point == "/srv/apl/lower/debian x");
    CHECK(m[1].major == 7);
    CHECK(m[1].minor == 3);
    CHECK(m[1].fstype == "squashfs");
    CHECK(m[1].source == "/dev/loop3");
    CHECK(m[1].read_only());
    CHECK_FALSE(m[0].read_only());
    // libmount decodes the escapes; a value holding a comma is still matched whole.
    CHECK(m[2].has_super_option("lowerdir=/srv/apl/lower/a,b"));
    // Decoded, "a" and "a,b" cannot be told apart alone; with the option after it they can.
    CHECK(m[2].has_super_option("lowerdir=/srv/apl/lower/a,b,upperdir=/srv/apl/upper/aplspawn10"));
    CHECK_FALSE(m[2].has_super_option("lowerdir=/srv/apl/lower/a,upperdir=/srv/apl/upper/aplspawn10"));
    CHECK(m[2].has_super_option("index=off"));
    CHECK(m[2].super_option("upperdir") == "/srv/apl/upper/aplspawn10");
    CHECK_FALSE(m[2].super_option("metacopy"));
    // Stacked mounts: the last one is the visible one.
    CHECK(sys::count_mounts(m, "/srv/machines/aplspawn10") == 2);
    CHECK(sys::find_mount(m, "/srv/machines/aplspawn10")->id == 97);
    CHECK_FALSE(sys::find_mount(m, "/srv/machines"));
}

TEST_CASE("overlay state: absent, exactly ours, or something else", "[fleet]") {
    fleet::ContainerDirs d{"/u/c1", "/w/c1", "/m/c1"};
    CHECK(fleet::overlay_mount_data("/l/img", d) ==
          "lowerdir=/l/img,upperdir=/u/c1,workdir=/w/c1,index=off");
    fleet::ContainerDirs odd{"/u/a,b", "/w/a:b", "/m/x"};
    CHECK(fleet::overlay_mount_data("/l\\x", odd) ==
          "lowerdir=/l\\\\x,upperdir=/u/a\\,b,workdir=/w/a\\:b,index=off");

    auto mounts = sys::parse_mountinfo(
        "96 22 0:61 / /m/c1 rw - overlay overlay rw,lowerdir=/l/img,upperdir=/u/c1,workdir=/w/c1\n");
    CHECK(fleet::overlay_state(mounts, "/l/img", d) == fleet::OverlayState::correct);
    CHECK(fleet::overlay_state(mounts, "/l/other", d) == fleet::OverlayState::other);
    CHECK(fleet::overlay_state({}, "/l/img", d) == fleet::OverlayState::absent);
    auto tmpfs = sys::parse_mountinfo("96 22 0:61 / /m/c1 rw - tmpfs tmpfs rw\n");
    CHECK(fleet::overlay_state(tmpfs, "/l/img", d) == fleet::OverlayState::other);
}

TEST_CASE("nspawn arguments: boot and script mode", "[fleet]") {
    fleet::LaunchSpec s;
    s.name = "aplspawn10";
    s.root = "/var/lib/machines/aplspawn10";
    s.network_namespace = "/run/netns/aplspawn-aplspawn10";
    auto boot = fleet::nspawn_arguments(s);
    CHECK(contains(boot, "--boot"));
    CHECK(contains(boot, "--directory=/var/lib/machines/aplspawn10"));
    CHECK(contains(boot, "--machine=aplspawn10"));
    // aplspawn made the namespace with every interface, and the launchers start nspawn in it:
    // no network option of nspawn's (--network-namespace-path= would give the container the
    // host's sysfs), the container's root keeps CAP_NET_ADMIN and /proc/sys/net is writable.
    for (const auto& a : boot) CHECK_FALSE(a.starts_with("--network"));
    CHECK(contains(boot, "--capability=CAP_NET_ADMIN"));
    CHECK(fleet::nspawn_environment(s) == std::vector<std::string>{"SYSTEMD_NSPAWN_API_VFS_WRITABLE=network"});
    fleet::LaunchSpec no_netns = s;
    no_netns.network_namespace.clear();
    CHECK_FALSE(contains(fleet::nspawn_arguments(no_netns), "--capability=CAP_NET_ADMIN"));
    CHECK(fleet::nspawn_environment(no_netns).empty());
    CHECK_FALSE(contains(boot, "--"));
    CHECK_FALSE(contains(boot, "--register=no"));  // the detached launcher's own addition

    s.mode = config::StartMode::script;
    s.command = {"/root/starter/startup.sh"};
    s.binds = {{"/home/u/apl/star:ter", "/root/starter", true}};
    s.env = {{"ipaddress", "10.10.12.10"}, {"cName", "aplspawn10"}};
    auto script = fleet::nspawn_arguments(s);
    CHECK_FALSE(contains(script, "--boot"));
    CHECK(contains(script, "--kill-signal=SIGTERM"));
    CHECK(contains(script, "--bind-ro=/home/u/apl/star\\:ter:/root/starter"));
    CHECK(contains(script, "--setenv=ipaddress=10.10.12.10"));
    CHECK(contains(script, "--setenv=cName=aplspawn10"));
    // The command comes last, after "--".
    REQUIRE(script.size() >= 2);
    CHECK(script[script.size() - 2] == "--");
    CHECK(script.back() == "/root/starter/startup.sh");

    // What list_nspawn_processes() finds again in /proc/PID/cmdline.
    std::string cmdline = "/usr/bin/systemd-nspawn";
    cmdline += '\0';
    cmdline += "--register=no";
    for (const auto& a : script) {
        cmdline += '\0';
        cmdline += a;
    }
    auto found = fleet::parse_nspawn_cmdline(cmdline);
    REQUIRE(found);
    CHECK(found->machine == "aplspawn10");
    CHECK(found->directory == "/var/lib/machines/aplspawn10");
    CHECK_FALSE(fleet::parse_nspawn_cmdline(std::string("sleep\0--machine=x\0--directory=/y", 31)));
    // Options after "--" belong to the container's command.
    CHECK_FALSE(fleet::parse_nspawn_cmdline(
        std::string("systemd-nspawn\0--\0--machine=x\0--directory=/y", 44)));
}

TEST_CASE("launch and provision specs follow the config", "[fleet]") {
    auto c = test_config(R"(  bindHost: /srv/starter
  bindContainer: /root/starter
  startupScript: /root/starter/startup.sh
  variablesFile: /srv/starter/variables.sh
)");
    const auto& ct = c.fleet.at(0);
    CHECK(ct.name == "aplspawn10");
    fleet::StateDir state("/srv/apl/state");
    fleet::ContainerDirs dirs{"/srv/apl/upper/aplspawn10", "/srv/apl/work/aplspawn10",
                              "/srv/machines/aplspawn10"};
    auto l = fleet::launch_spec(ct, dirs, state);
    CHECK(l.mode == config::StartMode::script);
    CHECK(l.command == std::vector<std::string>{"/root/starter/startup.sh"});
    REQUIRE(l.binds.size() == 1);
    CHECK(l.binds[0].host == "/srv/starter");
    CHECK(l.binds[0].container == "/root/starter");
    CHECK(l.env == std::vector<std::pair<std::string, std::string>>{{"ipaddress", "10.77.0.10"},
                                                                     {"cName", "aplspawn10"}});
    CHECK(l.log_file == "/srv/apl/state/containers/aplspawn10.log");
    CHECK(l.network_namespace == "/run/netns/aplspawn-aplspawn10");

    auto p = fleet::provision_spec(c, ct, "ssh-ed25519 AAAA k");
    CHECK(p.hostname == "aplspawn10");
    CHECK(p.ip.str() == "10.77.0.10");
    CHECK(p.prefix == 24);
    CHECK(p.gateway.str() == "10.77.0.1");
    CHECK(p.user == "test");
    CHECK(p.group == "test");
    CHECK(p.authorized_key == "ssh-ed25519 AAAA k");
    CHECK(p.mode == config::StartMode::script);

    auto boot = test_config();
    CHECK(fleet::launch_spec(boot.fleet.at(1), dirs, state).mode == config::StartMode::boot);
    CHECK(fleet::launch_spec(boot.fleet.at(1), dirs, state).env.empty());
}

TEST_CASE("script mode's variables file: the original's KEY=\"value\" lines, no passwords", "[fleet]") {
    auto c = test_config("");
    config::Group g = *c.groups.front();
    g.vars.user_password = "s3cret";
    g.vars.root_password = "r00t";
    std::string text = fleet::variables_file_text(g, "ssh-ed25519 AAAAC3Nz aplspawn-fleet");
    CHECK_THAT(text, Catch::Contains("userName=\"test\"\n"));
    CHECK_THAT(text, Catch::Contains("userGroup=\"test\"\n"));
    CHECK_THAT(text, Catch::Contains("netPrefix=\"24\"\n"));
    CHECK_THAT(text, Catch::Contains("defGateway=\"10.77.0.1\"\n"));
    CHECK_THAT(text, Catch::Contains("dnsAddress=\"10.77.0.1\"\n"));
    CHECK_THAT(text, Catch::Contains("sshPublicKeyPath=\"ssh-ed25519 AAAAC3Nz\"\n"));
    CHECK_THAT(text, !Catch::Contains("s3cret") && !Catch::Contains("r00t"));
    CHECK(fleet::sh_double_quoted("a\"b$c`d\\e") == "\"a\\\"b\\$c\\`d\\\\e\"");
    CHECK_THROWS(fleet::sh_double_quoted("two\nlines"));
}

TEST_CASE("known_hosts: a container's lines replaced, the others kept", "[fleet]") {
    std::string cur = "# fleet\n10.0.0.1 ssh-ed25519 AAA1\n10.0.0.2 ssh-ed25519 BBB1\n"
                      "10.0.0.1 ssh-rsa AAA2\n10.0.0.10 ssh-ed25519 TEN\n";
    std::string next = fleet::known_hosts_with(cur, "10.0.0.1",
                                               {"ssh-ed25519 NEW1 root@aplspawn1", "ecdsa-sha2-nistp256 NEW2"});
    // In place of the address's first line.
    CHECK(next == "# fleet\n10.0.0.1 ssh-ed25519 NEW1\n10.0.0.1 ecdsa-sha2-nistp256 NEW2\n"
                  "10.0.0.2 ssh-ed25519 BBB1\n10.0.0.10 ssh-ed25519 TEN\n");
    CHECK(fleet::known_hosts_keys(next, "10.0.0.1") ==
          std::vector<std::string>{"ssh-ed25519 NEW1", "ecdsa-sha2-nistp256 NEW2"});
    CHECK(fleet::known_hosts_keys(next, "10.0.0.10") == std::vector<std::string>{"ssh-ed25519 TEN"});
    CHECK(fleet::known_hosts_with(next, "10.0.0.1", {"ssh-ed25519 NEW1", "ecdsa-sha2-nistp256 NEW2"}) ==
          next);
    CHECK(fleet::known_hosts_without(next, "10.0.0.10").find("TEN") == std::string::npos);
    CHECK_THROWS(fleet::known_hosts_with("", "10.0.0.1", {"garbage"}));
    // The same keys again for a container whose lines are not the last: the text is unchanged
    // (reset keeps known_hosts as it was, whatever order the fleet was provisioned in).
    CHECK(fleet::known_hosts_with(next, "10.0.0.2", {"ssh-ed25519 BBB1"}) == next);
    // A new address goes at the end.
    CHECK(fleet::known_hosts_with(next, "10.0.0.3", {"ssh-ed25519 C"}) == next + "10.0.0.3 ssh-ed25519 C\n");
}

TEST_CASE("ssh: strict host key checking against the fleet's known_hosts only", "[fleet]") {
    fleet::SshTarget t{"10.0.0.5", "test", "/k/key", "/s/known_hosts"};
    auto a = fleet::ssh_argv(t, {"id", "-un"}, std::chrono::milliseconds(2500));
    auto has_opt = [&](const std::string& o) {
        for (size_t i = 0; i + 1 < a.size(); ++i)
            if (a[i] == "-o" && a[i + 1] == o) return true;
        return false;
    };
    CHECK(a.front() == "ssh");
    CHECK(has_opt("StrictHostKeyChecking=yes"));
    CHECK(has_opt("UserKnownHostsFile=/s/known_hosts"));
    CHECK(has_opt("GlobalKnownHostsFile=/dev/null"));
    CHECK(has_opt("BatchMode=yes"));
    CHECK(has_opt("IdentitiesOnly=yes"));
    CHECK(has_opt("ConnectTimeout=3"));
    CHECK(contains(a, "/k/key"));
    CHECK(contains(a, "test@10.0.0.5"));
    CHECK(a[a.size() - 3] == "--");
    CHECK(a.back() == "-un");
}

TEST_CASE("run_ordered: parallel work, reports in index order", "[fleet]") {
    std::vector<std::size_t> order;
    std::atomic<int> concurrent{0}, peak{0};
    fleet::run_ordered<int>(
        8, 8,
        [&](std::size_t i) {
            int now = ++concurrent;
            int p = peak.load();
            while (now > p && !peak.compare_exchange_weak(p, now)) {
            }
            // Later items finish first.
            std::this_thread::sleep_for(std::chrono::milliseconds(10 * (8 - static_cast<int>(i))));
            --concurrent;
            return static_cast<int>(i) * 2;
        },
        [&](std::size_t i, int& r) {
            CHECK(r == static_cast<int>(i) * 2);
            order.push_back(i);
        });
    CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(peak.load() > 1);
}

namespace {
fleet::Demand demand(long booted, long fleet_size, long workers = 10) {
    fleet::Demand d;
    d.booted = booted;
    d.fleet_size = fleet_size;
    d.workers = workers;
    return d;
}
}  // namespace

TEST_CASE("host limits: a fleet of 100 on Debian's defaults is stopped naming the sysctl and the value",
          "[fleet]") {
    fleet::HostCounts debian;  // this machine as installed: 2 CPUs, Debian's sysctls
    debian.inotify_instances_limit = 128;
    debian.inotify_instances_used = 20;
    debian.pid_max = 32768;
    debian.threads_max = 191000;
    debian.tasks = 300;
    debian.neigh_gc_thresh3 = 1024;
    debian.root_keys_limit = 1000000;
    debian.root_keys_used = 9;
    debian.root_key_bytes_limit = 25000000;
    debian.root_key_bytes_used = 48;
    debian.conntrack_limit = 262144;
    debian.conntrack_used = 40;
    debian.open_files_soft = 1024;
    debian.open_files_hard = 524288;
    CHECK(fleet::limit_shortfalls(debian, demand(9, 10)).empty());  // 20 + 90 + 16 <= 128
    CHECK(fleet::limit_shortfalls(debian, demand(10, 10)).size() == 1);
    auto s = fleet::limit_shortfalls(debian, demand(100, 100, 64));
    REQUIRE(s.size() == 1);
    CHECK(s[0] == "fs.inotify.max_user_instances is 128; 100 more booted containers (20 instances "
                  "in use now) need about 1036: raise it first (sysctl -w "
                  "fs.inotify.max_user_instances=2048, and a file in /etc/sysctl.d/ to keep it)");
    // Already running containers hold their instances: only the new ones count.
    debian.inotify_instances_limit = 1024;
    debian.inotify_instances_used = 900;
    CHECK(fleet::limit_shortfalls(debian, demand(10, 110)).empty());  // 900 + 100 + 16 <= 1024
    CHECK(fleet::limit_shortfalls(debian, demand(20, 120)).size() == 1);
    // 1000 containers: tasks and the neighbour table too (the host's entry for each container and
    // each container's for its gateway: one table).
    debian.inotify_instances_limit = 16384;
    debian.inotify_instances_used = 0;
    s = fleet::limit_shortfalls(debian, demand(1000, 1000, 64));
    REQUIRE(s.size() == 2);
    CHECK(s[0].starts_with("kernel.pid_max is 32768; 1000 more booted containers (300 tasks now) need "
                           "about 64300: raise it first (sysctl -w kernel.pid_max=65536,"));
    CHECK(s[1].starts_with("net.ipv4.neigh.default.gc_thresh3 is 1024; 1000 containers on the bridge "
                           "need about 2256: raise it first (sysctl -w net.ipv4.neigh.default.gc_thresh3=4096,"));
    CHECK(fleet::limit_shortfalls(debian, demand(300, 384)).empty());  // 768 + 256 <= 1024
    CHECK(fleet::limit_shortfalls(debian, demand(300, 385)).size() == 1);
    // Unknown values are not checked; script-mode containers only count on the bridge.
    CHECK(fleet::limit_shortfalls(fleet::HostCounts{}, demand(1000, 1000, 64)).empty());
    CHECK(fleet::limit_shortfalls(debian, demand(0, 10)).empty());
}

TEST_CASE("host limits: root's kernel keys, conntrack, bridge ports and aplspawn's open files", "[fleet]") {
    fleet::HostCounts h;
    h.root_keys_limit = 200;  // as if root had an ordinary user's quota
    h.root_keys_used = 9;
    h.root_key_bytes_limit = 20000;
    h.root_key_bytes_used = 48;
    CHECK(fleet::limit_shortfalls(h, demand(95, 95)).empty());  // 9 + 190 <= 200
    auto s = fleet::limit_shortfalls(h, demand(100, 100));
    REQUIRE(s.size() == 1);
    CHECK(s[0] == "kernel.keys.root_maxkeys is 200; 100 more booted containers (9 keys of root now) "
                  "need about 209: raise it first (sysctl -w kernel.keys.root_maxkeys=1024, and a file "
                  "in /etc/sysctl.d/ to keep it)");
    h.root_key_bytes_limit = 2000;
    s = fleet::limit_shortfalls(h, demand(50, 50));
    REQUIRE(s.size() == 1);
    CHECK(s[0].starts_with("kernel.keys.root_maxbytes is 2000; 50 more booted containers (48 bytes of "
                           "root's keys now) need about 3248: raise it first"));
    // Script mode (no systemd in the container) holds no key.
    CHECK(fleet::limit_shortfalls(h, demand(0, 50)).empty());

    fleet::HostCounts ct;
    ct.conntrack_limit = 2048;
    ct.conntrack_used = 100;
    CHECK(fleet::limit_shortfalls(ct, demand(100, 100)).empty());  // 100 + 1600 <= 2048
    s = fleet::limit_shortfalls(ct, demand(200, 200));
    REQUIRE(s.size() == 1);
    CHECK(s[0].starts_with("net.netfilter.nf_conntrack_max is 2048; 200 containers (100 connections "
                           "tracked now) need about 3300: raise it first (sysctl -w "
                           "net.netfilter.nf_conntrack_max=4096,"));

    fleet::HostCounts br;
    br.bridge_ports = {{"nspawnd0", 1000}, {"backend0", 10}};
    fleet::Demand d = demand(0, 1030);
    d.new_ports = {{"nspawnd0", 23}, {"backend0", 23}, {"unknown0", 5000}};
    CHECK(fleet::limit_shortfalls(br, d).empty());  // 1023 ports is the most a bridge takes
    d.new_ports["nspawnd0"] = 24;
    s = fleet::limit_shortfalls(br, d);
    REQUIRE(s.size() == 1);
    CHECK(s[0] == "bridge nspawnd0 has 1000 ports; 24 more containers on it would make 1024, over the "
                  "kernel's limit of 1023 ports per bridge: put some groups on a network of their own "
                  "(networks:, docs/config.md)");

    fleet::HostCounts files;
    files.open_files_soft = 1024;
    files.open_files_hard = 1024;  // a hard limit aplspawn cannot raise beyond
    CHECK(fleet::open_files_needed(64) == 832);  // 589 measured with 64 at once
    CHECK(fleet::limit_shortfalls(files, demand(0, 100, 64)).empty());
    s = fleet::limit_shortfalls(files, demand(0, 200, 200));
    REQUIRE(s.size() == 1);
    CHECK(s[0] == "the open files limit of aplspawn (RLIMIT_NOFILE, ulimit -n) is at most 1024; 200 "
                  "containers at once need about 2464: raise its hard limit first (ulimit -Hn 2464 as "
                  "root, or LimitNOFILE= of the unit that runs it)");
}

TEST_CASE("host limits: spawn raises its own open files limit within the hard limit", "[fleet]") {
    rlimit was{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &was) == 0);
    if (was.rlim_max != RLIM_INFINITY && was.rlim_max < 600) {
        WARN("hard limit of open files below 600: not checked");
        return;
    }
    rlimit low = was;
    low.rlim_cur = 256;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    CHECK(fleet::raise_open_files(100) == 256);  // enough already: unchanged
    CHECK(fleet::raise_open_files(600) == 600);
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    CHECK(now.rlim_cur == 600);
    CHECK(now.rlim_max == was.rlim_max);
    fleet::HostCounts h = fleet::read_host_counts();
    CHECK(h.open_files_soft == 600);
    CHECK(h.root_keys_used >= 0);  // /proc/key-users read (root's line, or none: 0)
    ::setrlimit(RLIMIT_NOFILE, &was);
}
