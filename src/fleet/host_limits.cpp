#include "aplspawn/fleet/host_limits.hpp"

#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fs.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace aplspawn::fleet {
namespace {

namespace fs = std::filesystem;

long read_number(const char* path, std::size_t field = 0) {
    try {
        auto text = sys::read_file_if_exists(path);
        if (!text) return -1;
        std::string_view s = *text;
        for (std::size_t i = 0; i < field; ++i) {
            auto sp = s.find_first_of(" \t");
            if (sp == std::string_view::npos) return -1;
            s.remove_prefix(sp + 1);
        }
        long v = -1;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        return ec == std::errc() ? v : -1;
    } catch (...) {
        return -1;
    }
}

// inotify instances held by root's processes: fds that read "anon_inode:inotify".
long root_inotify_instances() {
    long count = 0;
    std::error_code ec;
    for (const auto& p : fs::directory_iterator("/proc", ec)) {
        const std::string pid = p.path().filename().string();
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
        struct stat st;
        if (::stat(p.path().c_str(), &st) < 0 || st.st_uid != 0) continue;
        const std::string fd_dir = p.path().string() + "/fd";
        sys::Dir d = sys::Dir::open(fd_dir.c_str());
        if (!d) continue;
        while (dirent* e = d.next()) {
            if (e->d_name[0] == '.') continue;
            char target[64];
            ssize_t n = ::readlinkat(::dirfd(d.get()), e->d_name, target, sizeof target - 1);
            if (n > 0 && std::string_view(target, static_cast<std::size_t>(n)) == "anon_inode:inotify")
                ++count;
        }
    }
    return count;
}

// "running/total" is the fourth field of /proc/loadavg.
long tasks_now() {
    try {
        auto text = sys::read_file_if_exists("/proc/loadavg");
        if (!text) return -1;
        auto slash = text->find('/');
        if (slash == std::string::npos) return -1;
        return std::strtol(text->c_str() + slash + 1, nullptr, 10);
    } catch (...) {
        return -1;
    }
}

// Root's line of /proc/key-users: "    0:     9 8/8 3/1000000 48/25000000" (usage, keys/
// instantiated, quota keys/max, quota bytes/max).
void read_root_keys(HostCounts& h) {
    std::optional<std::string> text;
    try {
        text = sys::read_file_if_exists("/proc/key-users");
    } catch (...) {
        return;
    }
    if (!text) return;
    std::string_view s = *text;
    while (!s.empty()) {
        auto nl = s.find('\n');
        std::string_view line = s.substr(0, nl);
        s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view uid = line.substr(0, colon);
        uid.remove_prefix(std::min(uid.find_first_not_of(' '), uid.size()));
        if (uid != "0") continue;
        long usage = 0, nkeys = 0, nikeys = 0, qnkeys = 0, maxkeys = 0, qnbytes = 0, maxbytes = 0;
        std::string rest(line.substr(colon + 1));
        if (std::sscanf(rest.c_str(), "%ld %ld/%ld %ld/%ld %ld/%ld", &usage, &nkeys, &nikeys, &qnkeys,
                        &maxkeys, &qnbytes, &maxbytes) == 7) {
            h.root_keys_used = qnkeys;
            h.root_key_bytes_used = qnbytes;
        }
        return;
    }
    h.root_keys_used = h.root_key_bytes_used = 0;  // root holds no key yet
}

}  // namespace

HostCounts read_host_counts(const std::vector<std::string>& bridges) {
    HostCounts h;
    h.inotify_instances_limit = read_number("/proc/sys/fs/inotify/max_user_instances");
    h.inotify_instances_used = root_inotify_instances();
    h.pid_max = read_number("/proc/sys/kernel/pid_max");
    h.threads_max = read_number("/proc/sys/kernel/threads-max");
    h.tasks = tasks_now();
    h.neigh_gc_thresh3 = read_number("/proc/sys/net/ipv4/neigh/default/gc_thresh3");
    h.root_keys_limit = read_number("/proc/sys/kernel/keys/root_maxkeys");
    h.root_key_bytes_limit = read_number("/proc/sys/kernel/keys/root_maxbytes");
    read_root_keys(h);
    h.conntrack_limit = read_number("/proc/sys/net/netfilter/nf_conntrack_max");
    h.conntrack_used = read_number("/proc/sys/net/netfilter/nf_conntrack_count");
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        auto clamp = [](rlim_t v) { return v == RLIM_INFINITY ? LONG_MAX : static_cast<long>(v); };
        h.open_files_soft = clamp(rl.rlim_cur);
        h.open_files_hard = clamp(rl.rlim_max);
    }
    if (!bridges.empty()) {
        try {
            net::Netlink nl = net::Netlink::open();
            auto links = net::list_links(nl);
            for (const auto& b : bridges) {
                auto br = std::find_if(links.begin(), links.end(), [&](const auto& l) { return l.name == b; });
                if (br == links.end()) continue;
                h.bridge_ports[b] = std::count_if(links.begin(), links.end(),
                                                  [&](const auto& l) { return l.master == br->index; });
            }
        } catch (...) {
            // not counted: the check is left out
        }
    }
    return h;
}

long raise_open_files(long needed) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
    if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) < needed) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? static_cast<rlim_t>(needed)
                                                     : std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(needed));
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
    }
    return rl.rlim_cur == RLIM_INFINITY ? LONG_MAX : static_cast<long>(rl.rlim_cur);
}

std::vector<std::string> limit_shortfalls(const HostCounts& host, const Demand& d) {
    std::vector<std::string> out;
    auto advise = [&](const char* sysctl, long current, long needed, const std::string& what) {
        if (current < 0 || current >= needed) return;
        long to = 1024;  // the next power of two, at least 1024
        while (to < needed) to *= 2;
        out.push_back(fmt::format("{} is {}; {} need about {}: raise it first (sysctl -w {}={}, and a "
                                  "file in /etc/sysctl.d/ to keep it)",
                                  sysctl, current, what, needed, sysctl, to));
    };
    const long booted = d.booted;
    if (booted > 0) {
        const long used = std::max(host.inotify_instances_used, 0L);
        advise("fs.inotify.max_user_instances", host.inotify_instances_limit,
               used + booted * kInotifyPerContainer + 16,
               fmt::format("{} more booted containers ({} instances in use now)", booted, used));
        const long tasks = std::max(host.tasks, 0L);
        const long need_tasks = tasks + booted * kTasksPerContainer;
        advise("kernel.pid_max", host.pid_max, need_tasks,
               fmt::format("{} more booted containers ({} tasks now)", booted, tasks));
        advise("kernel.threads-max", host.threads_max, need_tasks,
               fmt::format("{} more booted containers ({} tasks now)", booted, tasks));
        const long keys = std::max(host.root_keys_used, 0L);
        advise("kernel.keys.root_maxkeys", host.root_keys_limit, keys + booted * kKeysPerContainer,
               fmt::format("{} more booted containers ({} keys of root now)", booted, keys));
        const long key_bytes = std::max(host.root_key_bytes_used, 0L);
        advise("kernel.keys.root_maxbytes", host.root_key_bytes_limit,
               key_bytes + booted * kKeyBytesPerContainer,
               fmt::format("{} more booted containers ({} bytes of root's keys now)", booted, key_bytes));
    }
    // Every container is a neighbour of the host on the bridge (and the host one of it, in the
    // same table); past gc_thresh3 the kernel drops entries and containers stop answering until
    // it relearns them.
    advise("net.ipv4.neigh.default.gc_thresh3", host.neigh_gc_thresh3,
           d.fleet_size * kNeighboursPerContainer + 256,
           fmt::format("{} containers on the bridge", d.fleet_size));
    const long tracked = std::max(host.conntrack_used, 0L);
    advise("net.netfilter.nf_conntrack_max", host.conntrack_limit,
           tracked + d.fleet_size * kConntrackPerContainer,
           fmt::format("{} containers ({} connections tracked now)", d.fleet_size, tracked));
    for (const auto& [bridge, adding] : d.new_ports) {
        auto now = host.bridge_ports.find(bridge);
        if (now == host.bridge_ports.end() || now->second + adding <= kBridgePortsMax) continue;
        out.push_back(fmt::format("bridge {} has {} ports; {} more containers on it would make {}, over "
                                  "the kernel's limit of {} ports per bridge: put some groups on a "
                                  "network of their own (networks:, docs/config.md)",
                                  bridge, now->second, adding, now->second + adding, kBridgePortsMax));
    }
    const long files = open_files_needed(d.workers);
    if (host.open_files_hard >= 0 && host.open_files_hard < files)
        out.push_back(fmt::format("the open files limit of aplspawn (RLIMIT_NOFILE, ulimit -n) is at most "
                                  "{}; {} containers at once need about {}: raise its hard limit first "
                                  "(ulimit -Hn {} as root, or LimitNOFILE= of the unit that runs it)",
                                  host.open_files_hard, d.workers, files, files));
    return out;
}

}  // namespace aplspawn::fleet
