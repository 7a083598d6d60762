#include "aplspawn/fleet/resources.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

const std::vector<std::string>& lxcfs_proc_files() {
    static const std::vector<std::string> files = {"proc/meminfo", "proc/cpuinfo", "proc/stat",
                                                   "proc/uptime",  "proc/loadavg", "proc/swaps",
                                                   "proc/diskstats"};
    return files;
}

sys::CgroupLimits cgroup_limits(const config::Resources& r) {
    sys::CgroupLimits l;
    l.memory_bytes = r.memory_bytes;
    l.cpus = config::cpu_list_string(r.cpus);
    l.tasks = r.tasks;
    return l;
}

std::vector<std::string> resource_arguments(const config::Resources& r,
                                            const std::optional<LxcfsView>& lxcfs) {
    std::vector<std::string> a;
    if (!r.cpus.empty()) a.push_back("--cpu-affinity=" + config::cpu_list_string(r.cpus));
    if (lxcfs && !lxcfs->files.empty()) {
        a.push_back("--bind-ro=" + lxcfs->dir.string());
        for (const auto& f : lxcfs->files)
            a.push_back(fmt::format("--bind-ro={}:/{}", (lxcfs->dir / f).string(), f));
    }
    return a;
}

std::vector<UnitProperty> unit_properties(const config::Resources& r) {
    std::vector<UnitProperty> p;
    if (r.memory_bytes) {
        p.push_back({"MemoryMax", *r.memory_bytes, {}});
        p.push_back({"MemorySwapMax", 0, {}});  // cgroup v2 only; v1: memory alone
    }
    if (r.tasks) p.push_back({"TasksMax", *r.tasks, {}});
    if (!r.cpus.empty()) {
        // systemd's CPU set as a bit mask, CPU n = bit n%8 of byte n/8.
        std::vector<std::uint8_t> mask(static_cast<std::size_t>(r.cpus.back() / 8 + 1), 0);
        for (int cpu : r.cpus) mask[static_cast<std::size_t>(cpu / 8)] |= std::uint8_t(1u << (cpu % 8));
        p.push_back({"AllowedCPUs", std::nullopt, mask});
    }
    return p;
}

std::filesystem::path memory_cgroup_dir(const sys::ControllerMounts& mounts, const std::string& launcher,
                                        const std::string& cgroup, const std::string& unit) {
    std::string rel;
    if (launcher == "systemd" && !unit.empty())
        rel = "machine.slice/" + unit;
    else
        rel = cgroup;
    while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
    if (rel.empty() || rel.find("..") != std::string::npos) return {};
    return mounts.dir("memory", rel);
}

std::vector<std::pair<std::string, std::uint64_t>> limit_host_vars(const config::Resources& r) {
    std::vector<std::pair<std::string, std::uint64_t>> v;
    if (auto mb = r.memory_mb()) v.emplace_back("aplspawn_memory_mb", *mb);
    if (!r.cpus.empty()) v.emplace_back("aplspawn_cpus", r.cpus.size());
    return v;
}

}  // namespace aplspawn::fleet
