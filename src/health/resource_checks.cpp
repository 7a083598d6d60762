#include "aplspawn/health/resources.hpp"

#include "aplspawn/fleet/lxcfs.hpp"
#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/sys/cgroup_limits.hpp"

#include <fmt/format.h>

namespace aplspawn::health {

CheckResult oom_check(const std::string& container, std::optional<std::uint64_t> kills,
                      std::uint64_t limit_bytes) {
    CheckResult r{container, "oom", fmt::format("Checking out-of-memory kills in {}", container), false, ""};
    const auto mib = limit_bytes / (1024 * 1024);
    if (!kills) {
        r.detail = fmt::format("its memory cgroup's oom_kill count cannot be read (limit {} MiB)", mib);
    } else if (*kills == 0) {
        r.ok = true;
        r.detail = fmt::format("none (memory limit {} MiB)", mib);
    } else {
        r.detail = fmt::format("{} process{} killed by the kernel's OOM killer at the {} MiB memory "
                               "limit (the container runs on)",
                               *kills, *kills == 1 ? " was" : "es were", mib);
    }
    return r;
}

Report check_resources(const config::Container& ct, const fleet::ContainerRecord& record, pid_t leader) {
    Report out;
    try {
        if (leader > 0) {
            if (auto answers = fleet::container_lxcfs_answers(leader)) {
                CheckResult r{ct.name, "lxcfs", fmt::format("Checking lxcfs answers for {}", ct.name),
                              *answers, ""};
                r.detail = *answers ? "its /proc/meminfo comes from lxcfs"
                                    : "its /proc/meminfo is lxcfs's, which does not answer (lxcfs "
                                      "restarted or gone: restart the container)";
                out.push_back(std::move(r));
            }
        }
        if (const auto& mem = ct.group->resources.memory_bytes) {
            auto dir = fleet::memory_cgroup_dir(sys::controller_mounts(), record.launcher,
                                                record.cgroup, record.unit);
            out.push_back(oom_check(ct.name, dir.empty() ? std::nullopt : sys::oom_kills(dir), *mem));
        }
    } catch (const std::exception& e) {
        out.push_back({ct.name, "resources", fmt::format("Checking limits of {}", ct.name), false, e.what()});
    }
    return out;
}

}  // namespace aplspawn::health
