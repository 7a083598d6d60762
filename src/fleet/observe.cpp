#include "aplspawn/fleet/observe.hpp"

#include "aplspawn/fleet/network.hpp"
#include "aplspawn/sys/mount.hpp"

#include <algorithm>

namespace aplspawn::fleet {

std::string ContainerView::mode() const {
    if (config) return config->common().mode() == config::StartMode::script ? "script" : "boot";
    if (record && !record->mode.empty()) return record->mode;
    return "boot";
}

bool FleetView::any_running() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto& v) { return v.running; });
}

bool FleetView::any_running_on(std::string_view image_name) const {
    return std::any_of(containers.begin(), containers.end(), [&](const auto& v) {
        return v.running && v.record->image == image_name;
    });
}

std::vector<std::string> FleetView::busy_leftovers() const {
    std::vector<std::string> out;
    for (const auto& v : containers)
        if (!v.config && (v.running || !v.strays.empty())) out.push_back(v.name);
    return out;
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
        if (ct) {
            v.ip = ct->ip.str();
            v.group = ct->group->name;
            v.dirs = container_dirs(c, *ct);
        } else {
            // Only recorded: where its record says it ran.
            if (v.record) v.ip = v.record->ip, v.group = v.record->group;
            fs::path home = v.record && !v.record->root.empty() ? v.record->root.parent_path()
                                                                : c.groups.front()->common.home_path;
            v.dirs = container_dirs(c, name, home);
        }
        v.running = v.record && is_running(*v.record);
        v.merged_mounted = merged_mounted(mounts, v.dirs);
        v.network_recorded = load_network_record(state, name).has_value();
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
    // Members the config no longer has and that do not run: their data is still here.
    for (const auto& [name, group] : state.members()) {
        if (c.find(name) || std::any_of(view.containers.begin(), view.containers.end(),
                                        [&](const auto& v) { return v.name == name; }))
            continue;
        add(name, nullptr);
        if (view.containers.back().group.empty()) view.containers.back().group = group;
        if (const config::Group* g = c.find_group(group))
            view.containers.back().dirs = container_dirs(c, name, g->common.home_path);
    }
    return view;
}

}  // namespace aplspawn::fleet
