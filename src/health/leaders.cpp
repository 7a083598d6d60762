#include "aplspawn/health/leaders.hpp"

#include "aplspawn/error.hpp"

#include <fmt/format.h>

namespace aplspawn::health {

Leader find_leader(const std::string& name, const std::optional<fleet::ContainerRecord>& record) {
    Leader l;
    if (!record) {
        l.problem = fmt::format("container {} is not running (no state record: stopped, or never started)", name);
        return l;
    }
    const auto& r = *record;
    if (!fleet::is_running(r)) {
        l.problem = fmt::format("container {} is not running (its systemd-nspawn, pid {}, is gone{})",
                                name, r.nspawn_pid, fleet::earlier_boot(r) ? ": recorded before a reboot" : "");
        return l;
    }
    auto now = fleet::find_leader(r.nspawn_pid);
    if (r.leader_pid > 0 && r.leader_start_time > 0) {
        fleet::ProcessRef recorded = r.leader();
        if (!fleet::alive(recorded)) {
            l.problem = fmt::format("container {}: its leader process {} is gone", name, r.leader_pid);
            return l;
        }
        if (!now || !(*now == recorded)) {
            l.problem = fmt::format("container {}: pid {} is no longer its PID 1 (now: {})", name,
                                    r.leader_pid, now ? std::to_string(now->pid) : "none");
            return l;
        }
        l.process = recorded;
        return l;
    }
    if (!now) {
        l.problem = fmt::format("container {}: systemd-nspawn (pid {}) has no PID 1 child", name,
                                r.nspawn_pid);
        return l;
    }
    l.process = now;
    return l;
}

std::vector<ContainerLeader> leaders(const config::Config& c,
                                     const std::vector<const config::Container*>& containers) {
    fleet::StateDir state(c);
    std::vector<ContainerLeader> out;
    for (const auto* ct : containers) {
        ContainerLeader cl{ct->name, ct->group->name, ct->ip.str(), {}};
        try {
            cl.leader = find_leader(ct->name, state.load(ct->name));
        } catch (const Error& e) {
            cl.leader.problem = e.message();
        }
        out.push_back(std::move(cl));
    }
    return out;
}

}  // namespace aplspawn::health
