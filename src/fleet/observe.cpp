#include "aplspawn/fleet/observe.hpp"

#include "aplspawn/sys/mount.hpp"

#include <algorithm>

namespace aplspawn::fleet {

bool FleetView::any_running() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto& v) { return v.running; });
}

bool FleetView::any_busy() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto& v) { return v.busy(); });
}

std::vector<std::string> FleetView::busy_names() const {
    std::vector<std::string> out;
    for (const auto& v : containers)
        if (v.busy()) out.push_back(v.name);
    return out;
}

FleetView observe(const config::Config& c, const StateDir& state) {
    FleetView view;
    auto mounts = sys::read_mountinfo();
    auto nspawns = list_nspawn_processes();

    auto add = [&](const std::string& name, const config::Container* ct) {
        ContainerView v;
        v.name = name;
        v.config = ct;
        v.record = state.load(name);
        if (ct) v.ip = ct->ip.str();
        else if (v.record) v.ip = v.record->ip;
        v.running = v.record && is_running(*v.record);
        v.dirs = container_dirs(c, name);
        v.merged_mounted = merged_mounted(mounts, v.dirs);
        for (const auto& n : nspawns) {
            if (n.machine != name) continue;
            if (sys::canonical_for_mountinfo(n.directory) != v.dirs.merged) continue;
            if (v.running && n.process.pid == v.record->nspawn_pid) continue;
            v.strays.push_back(n);
        }
        view.containers.push_back(std::move(v));
    };
    for (const auto& ct : c.fleet) add(ct.name, &ct);
    for (const auto& name : recorded_names(state))
        if (!c.find(name)) add(name, nullptr);
    return view;
}

}  // namespace aplspawn::fleet
