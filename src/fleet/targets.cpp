#include "aplspawn/fleet/targets.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace aplspawn::fleet {

FleetView Selection::of(const FleetView& view) const {
    FleetView out;
    for (const auto& v : view.containers)
        if (contains(v.name)) out.containers.push_back(v);
    return out;
}

std::vector<const config::Container*> Selection::of(const config::Config& c) const {
    std::vector<const config::Container*> out;
    for (const auto& ct : c.fleet)
        if (contains(ct.name)) out.push_back(&ct);
    return out;
}

Selection select_targets(const config::Config& c,
                         const std::vector<std::pair<std::string, std::string>>& recorded,
                         const std::vector<std::string>& targets) {
    Selection s;
    if (targets.empty()) return s;
    s.all = false;
    for (const auto& t : targets) {
        bool found = false;
        if (const config::Group* g = c.find_group(t)) {
            found = true;
            for (const auto& ct : c.fleet)
                if (ct.group.get() == g) s.names.insert(ct.name);
            for (const auto& [name, group] : recorded)
                if (group == t && !c.find(name)) s.names.insert(name);
        }
        if (c.find(t)) {
            found = true;
            s.names.insert(t);
        }
        for (const auto& [name, group] : recorded)
            if (name == t) {
                found = true;
                s.names.insert(t);
            }
        if (!found) {
            std::vector<std::string> groups;
            for (const auto& g : c.groups) groups.push_back(g->name);
            throw Error::usage(fmt::format(
                "{}: no group or container of that name in {} (groups: {}; aplspawn names lists "
                "the containers)",
                t, c.file.filename().string(), fmt::join(groups, ", ")));
        }
    }
    return s;
}

Selection select_targets(const config::Config& c, const StateDir& state,
                         const std::vector<std::string>& targets) {
    std::vector<std::pair<std::string, std::string>> recorded;
    if (!targets.empty()) {
        recorded = state.members();
        for (const auto& name : recorded_names(state)) {
            std::string group;
            try {
                if (auto r = state.load(name)) group = r->group;
            } catch (const Error&) {
                // an unreadable record still names a container
            }
            recorded.emplace_back(name, group);
        }
    }
    return select_targets(c, recorded, targets);
}

}  // namespace aplspawn::fleet
