#include "aplspawn/sys/cgroup_limits.hpp"

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

namespace aplspawn::sys {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLimitControllers[] = {"memory", "cpuset", "pids"};

// A cgroup file written with one write(2), as the kernel wants it; the error names the value.
void write_cgroup_file(const fs::path& file, const std::string& value) {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno(fmt::format("open {}", file.string()));
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        throw_errno(fmt::format("write '{}' to {}", value, file.string()));
}

// A cgroup file's value without the white space around it (its newline, too).
std::string read_trimmed(const fs::path& file) {
    auto s = read_file_if_exists(file);
    if (!s) return {};
    auto first = s->find_first_not_of(" \t\n");
    if (first == std::string::npos) return {};
    return s->substr(first, s->find_last_not_of(" \t\n") - first + 1);
}

// Makes `dir` and its missing parents below `root`. v1 cpuset: a new cgroup has no CPUs and no
// memory nodes until given some, and nothing may join it: each takes its parent's.
void make_cgroup_dirs(const fs::path& root, const std::string& relative, bool cpuset_v1) {
    fs::path dir = root;
    for (const auto& part : fs::path(relative)) {
        fs::path parent = dir;
        dir /= part;
        if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
            throw_errno(fmt::format("create cgroup {}", dir.string()));
        if (!cpuset_v1) continue;
        for (const char* f : {"cpuset.cpus", "cpuset.mems"})
            if (read_trimmed(dir / f).empty()) write_cgroup_file(dir / f, read_trimmed(parent / f));
    }
}

// v2: the controllers a limit needs, enabled in cgroup.subtree_control from the root down to the
// parent of `relative` (the cgroup itself enables nothing: processes live in it).
void enable_controllers(const fs::path& root, const std::string& relative,
                        const std::set<std::string>& controllers) {
    if (controllers.empty()) return;
    std::string line;
    for (const auto& c : controllers) line += (line.empty() ? "+" : " +") + c;
    fs::path dir = root;
    fs::path rel(relative);
    std::vector<fs::path> parts(rel.begin(), rel.end());
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string have = read_trimmed(dir / "cgroup.subtree_control");
        bool all = true;
        for (const auto& c : controllers)
            if ((" " + have + " ").find(" " + c + " ") == std::string::npos) all = false;
        if (!all) {
            try {
                write_cgroup_file(dir / "cgroup.subtree_control", line);
            } catch (const Error& e) {
                if (e.sys_errno() != EBUSY) throw;
                // cgroup v2's rule: only a cgroup without processes gives controllers to its
                // children (the hierarchy's root excepted). A cgroup namespace's root is no
                // exception: a container without systemd (Docker's way) runs in it.
                throw Error(fmt::format(
                    "enable {} in {}: the cgroup has processes of its own, and cgroup v2 gives "
                    "controllers to child cgroups only from a cgroup without processes (a "
                    "container's cgroup namespace whose root holds its processes, say): move "
                    "them into a child cgroup first (mkdir {}/init, then write each pid to "
                    "{}/init/cgroup.procs), or give the fleet no resources",
                    line, (dir / "cgroup.subtree_control").string(), dir.string(), dir.string()));
            }
        }
        dir /= parts[i];
        if (i + 1 < parts.size() && ::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
            throw_errno(fmt::format("create cgroup {}", dir.string()));
    }
}

}  // namespace

std::vector<CgroupWrite> limit_writes(CgroupLayout layout, const CgroupLimits& l) {
    std::vector<CgroupWrite> w;
    const bool v2 = layout == CgroupLayout::unified;
    if (!l.cpus.empty()) w.push_back({"cpuset", "cpuset.cpus", l.cpus});
    if (l.memory_bytes) {
        std::string bytes = std::to_string(*l.memory_bytes);
        if (v2) {
            w.push_back({"memory", "memory.max", bytes});
            w.push_back({"memory", "memory.swap.max", "0", true});
        } else {
            w.push_back({"memory", "memory.limit_in_bytes", bytes});
            // memory + swap: the same, so no swap beyond the limit (absent without swap accounting)
            w.push_back({"memory", "memory.memsw.limit_in_bytes", bytes, true});
        }
    }
    if (l.tasks) w.push_back({"pids", "pids.max", std::to_string(*l.tasks)});
    return w;
}

fs::path ControllerMounts::dir(std::string_view controller, const std::string& relative) const {
    if (layout == CgroupLayout::unified) return unified.empty() ? fs::path{} : unified / relative;
    auto it = v1.find(controller);
    return it == v1.end() ? fs::path{} : it->second / relative;
}

ControllerMounts controller_mounts() {
    ControllerMounts m;
    std::vector<MountInfo> mounts;
    try {
        mounts = read_mountinfo();
    } catch (const Error&) {
        return m;
    }
    for (const auto& mi : mounts) {
        if (mi.root != "/") continue;  // a bind of a sub-cgroup, not a hierarchy's root
        if (mi.fstype == "cgroup2" && m.unified.empty()) m.unified = mi.mount_point;
        if (mi.fstype != "cgroup") continue;
        for (const char* c : kLimitControllers)
            if (mi.has_super_option(c) && !m.v1.contains(c)) m.v1[c] = mi.mount_point;
    }
    // Unified when the v2 root offers the controllers (none of them bound to a v1 hierarchy).
    if (!m.unified.empty()) {
        std::string have = " " + read_trimmed(m.unified / "cgroup.controllers") + " ";
        bool all = true;
        for (const char* c : kLimitControllers)
            if (have.find(std::string(" ") + c + " ") == std::string::npos) all = false;
        if (all) m.layout = CgroupLayout::unified;
    }
    return m;
}

std::vector<UniqueFd> create_limited_cgroups(const ControllerMounts& mounts,
                                             const std::string& relative,
                                             const CgroupLimits& limits) {
    std::vector<UniqueFd> fds;
    if (limits.empty()) return fds;
    if (relative.empty() || relative.front() == '/' || relative.find("..") != std::string::npos)
        throw Error(fmt::format("cgroup '{}': not a relative path of our own", relative));
    auto writes = limit_writes(mounts.layout, limits);
    std::set<std::string> controllers;
    for (const auto& w : writes) controllers.insert(w.controller);
    for (const auto& c : controllers)
        if (mounts.dir(c, relative).empty())
            throw Error(fmt::format("limits need the {} cgroup controller, which this host has not "
                                    "mounted",
                                    c));

    std::set<fs::path> made;
    if (mounts.layout == CgroupLayout::unified) {
        enable_controllers(mounts.unified, relative, controllers);
        make_cgroup_dirs(mounts.unified, relative, false);
        made.insert(mounts.unified / relative);
    } else {
        for (const auto& c : controllers) {
            make_cgroup_dirs(mounts.v1.at(c), relative, c == "cpuset");
            made.insert(mounts.v1.at(c) / relative);
        }
    }
    for (const auto& w : writes) {
        fs::path file = mounts.dir(w.controller, relative) / w.file;
        if (w.optional && ::access(file.c_str(), F_OK) != 0) continue;
        write_cgroup_file(file, w.value);
    }
    for (const auto& dir : made) {
        fs::path procs = dir / "cgroup.procs";
        UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) throw_errno(fmt::format("open {}", procs.string()));
        fds.push_back(std::move(fd));
    }
    return fds;
}

std::vector<fs::path> limit_cgroup_mounts() {
    std::vector<fs::path> out;
    auto m = controller_mounts();
    for (const auto& [c, p] : m.v1) out.push_back(p);
    return out;
}

std::optional<std::uint64_t> oom_kills(const fs::path& dir) {
    for (const char* f : {"memory.events", "memory.oom_control"}) {
        std::optional<std::string> text;
        try {
            text = read_file_if_exists(dir / f);
        } catch (const Error&) {
            continue;
        }
        if (!text) continue;
        std::string_view s(*text);
        while (!s.empty()) {
            auto nl = s.find('\n');
            std::string_view line = s.substr(0, nl);
            if (line.starts_with("oom_kill ")) {
                std::uint64_t v = 0;
                auto num = line.substr(9);
                auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
                if (ec == std::errc()) return v;
            }
            if (nl == std::string_view::npos) break;
            s.remove_prefix(nl + 1);
        }
    }
    return std::nullopt;
}

}  // namespace aplspawn::sys
