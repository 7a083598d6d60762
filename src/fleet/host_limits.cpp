#include "aplspawn/fleet/host_limits.hpp"

#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
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

}  // namespace

HostCounts read_host_counts() {
    HostCounts h;
    h.inotify_instances_limit = read_number("/proc/sys/fs/inotify/max_user_instances");
    h.inotify_instances_used = root_inotify_instances();
    h.pid_max = read_number("/proc/sys/kernel/pid_max");
    h.threads_max = read_number("/proc/sys/kernel/threads-max");
    h.tasks = tasks_now();
    h.neigh_gc_thresh3 = read_number("/proc/sys/net/ipv4/neigh/default/gc_thresh3");
    return h;
}

std::vector<std::string> limit_shortfalls(const HostCounts& host, long booted, long fleet_size) {
    std::vector<std::string> out;
    auto advise = [&](const char* sysctl, long current, long needed, const std::string& what) {
        if (current < 0 || current >= needed) return;
        long to = 1024;  // the next power of two, at least 1024
        while (to < needed) to *= 2;
        out.push_back(fmt::format("{} is {}; {} need about {}: raise it first (sysctl -w {}={}, and a "
                                  "file in /etc/sysctl.d/ to keep it)",
                                  sysctl, current, what, needed, sysctl, to));
    };
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
    }
    // Every container is a neighbour of the host on the bridge; past gc_thresh3 the kernel drops
    // entries and containers stop answering until it relearns them.
    advise("net.ipv4.neigh.default.gc_thresh3", host.neigh_gc_thresh3, fleet_size + 256,
           fmt::format("{} containers on the bridge", fleet_size));
    return out;
}

}  // namespace aplspawn::fleet
