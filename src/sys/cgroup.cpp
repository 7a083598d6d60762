#include "aplspawn/sys/cgroup.hpp"

#include "aplspawn/sys/cgroup_limits.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

namespace aplspawn::sys {
namespace {

namespace fs = std::filesystem;

// rmdir of a cgroup tree, children first. true when `dir` is gone.
bool remove_tree(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_directory(ec) && !e.is_symlink(ec)) remove_tree(e.path());
    return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

// Whether any cgroup of the tree at `dir` holds a process (its cgroup.procs is not empty). An
// unreadable cgroup.procs counts as in use.
bool tree_in_use(const fs::path& dir) {
    std::optional<std::string> procs;
    try {
        procs = read_file_if_exists(dir / "cgroup.procs");
    } catch (const Error&) {
        return true;
    }
    if (!procs || !procs->empty()) return true;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_directory(ec) && !e.is_symlink(ec) && tree_in_use(e.path())) return true;
    return static_cast<bool>(ec);
}

// Every hierarchy our cgroups may be in: the systemd ones, and the v1 memory, cpuset and pids
// hierarchies of containers with limits (sys/cgroup_limits.hpp).
std::vector<fs::path> own_hierarchies() {
    auto out = systemd_cgroup_mounts();
    for (const auto& p : limit_cgroup_mounts())
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    return out;
}

}  // namespace

std::vector<fs::path> systemd_cgroup_mounts() {
    std::vector<fs::path> out;
    std::vector<MountInfo> mounts;
    try {
        mounts = read_mountinfo();
    } catch (const Error&) {
        return out;
    }
    for (const auto& m : mounts) {
        if (m.root != "/") continue;  // a bind of a sub-cgroup, not a hierarchy's root
        bool unified = m.fstype == "cgroup2";
        bool named = m.fstype == "cgroup" && m.has_super_option("name=systemd");
        if (!unified && !named) continue;
        fs::path p = m.mount_point;
        bool seen = false;
        for (const auto& q : out) seen |= q == p;
        if (!seen) out.push_back(p);
    }
    return out;
}

std::vector<UniqueFd> create_cgroups(const std::string& relative) {
    std::vector<UniqueFd> fds;
    for (const auto& root : systemd_cgroup_mounts()) {
        fs::path dir = root / relative;
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec)
            throw Error(fmt::format("create cgroup {}: {}", dir.string(), ec.message()), Exit::failed,
                        ec.value());
        fs::path procs = dir / "cgroup.procs";
        UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) throw_errno(fmt::format("open {}", procs.string()));
        fds.push_back(std::move(fd));
    }
    return fds;
}

Change remove_cgroup(const std::string& relative) {
    Change changed = Change::unchanged;
    std::string rel = relative;
    while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
    if (rel.empty() || rel.find("..") != std::string::npos) return changed;
    for (const auto& root : own_hierarchies()) {
        fs::path dir = root / rel;
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        if (remove_tree(dir)) changed = Change::changed;
        ::rmdir(dir.parent_path().c_str());  // only when empty
    }
    return changed;
}

std::size_t remove_unused_cgroups(const std::string& parent, std::chrono::seconds min_age) {
    std::set<std::string> removed;  // by name: one container's cgroup is in every hierarchy
    if (parent.empty() || parent.front() == '/' || parent.find("..") != std::string::npos) return 0;
    const auto now = std::chrono::system_clock::now();
    for (const auto& root : own_hierarchies()) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root / parent, ec)) {
            if (!e.is_directory(ec) || e.is_symlink(ec)) continue;
            struct ::stat st {};
            if (::lstat(e.path().c_str(), &st) < 0) continue;
            auto made = std::chrono::system_clock::from_time_t(st.st_mtime);
            if (now - made < min_age) continue;  // maybe just made, its process on the way in
            if (tree_in_use(e.path())) continue;
            if (remove_tree(e.path())) removed.insert(e.path().filename().string());
        }
        if (!ec) ::rmdir((root / parent).c_str());  // only when empty
    }
    return removed.size();
}

std::string cgroup_of(pid_t pid) {
    std::optional<std::string> text;
    try {
        text = read_file_if_exists(fmt::format("/proc/{}/cgroup", pid));
    } catch (const Error&) {
        return "";
    }
    if (!text) return "";
    std::string unified, named;
    std::string_view s(*text);
    while (!s.empty()) {
        auto nl = s.find('\n');
        std::string_view line = s.substr(0, nl);
        if (line.starts_with("0::")) unified = std::string(line.substr(3));
        else if (auto at = line.find(":name=systemd:"); at != std::string_view::npos)
            named = std::string(line.substr(at + 14));
        if (nl == std::string_view::npos) break;
        s.remove_prefix(nl + 1);
    }
    return unified.empty() || unified == "/" ? named : unified;
}

}  // namespace aplspawn::sys
