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

namespace {

// Another host's group or container named on this host: where it runs instead.
void refuse_remote(const config::Config& c, const std::string& target) {
    const config::Group* g = c.find_group(target);
    const bool is_group = g != nullptr;
    if (!g)
        if (const config::Container* ct = c.find(target)) g = ct->group.get();
    const config::Host* h = g ? c.host_of(*g) : nullptr;
    if (!h || h == c.local.get()) return;
    throw Error::usage(fmt::format("{}: {} {} runs on host {} ({}), this is host {}: run it there", target,
                                   is_group ? "group" : "container", target, h->name, h->address.str(),
                                   c.local->name));
}

}  // namespace

Selection select_targets(const config::Config& c,
                         const std::vector<std::pair<std::string, std::string>>& recorded,
                         const std::vector<std::string>& targets, Scope scope) {
    Selection s;
    const bool on_host = scope == Scope::this_host && c.local;
    if (targets.empty()) {
        if (!on_host) return s;
        // This host's containers, and whatever is recorded here.
        s.all = false;
        for (const auto& ct : c.fleet)
            if (c.is_local(ct)) s.names.insert(ct.name);
        for (const auto& [name, group] : recorded) s.names.insert(name);
        return s;
    }
    s.all = false;
    for (const auto& t : targets) {
        if (on_host) refuse_remote(c, t);
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
                         const std::vector<std::string>& targets, Scope scope) {
    std::vector<std::pair<std::string, std::string>> recorded;
    if (!targets.empty() || (scope == Scope::this_host && c.local)) {
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
    return select_targets(c, recorded, targets, scope);
}

}  // namespace aplspawn::fleet
