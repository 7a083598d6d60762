#include "aplspawn/fleet/cleanup.hpp"

#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/remove_tree.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace aplspawn::fleet {
namespace {

bool is_under(const fs::path& p, const fs::path& dir) {
    std::string a = sys::canonical_for_mountinfo(p).string();
    std::string b = sys::canonical_for_mountinfo(dir).string();
    return a.size() > b.size() + 1 && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/';
}

CleanupGroup group_of(const fs::path& dir, const std::vector<std::string>& candidates) {
    CleanupGroup g{dir, {}};
    for (const auto& n : candidates)
        if (sys::exists_at(dir, n)) g.names.push_back(n);
    return g;
}

}  // namespace

void check_cleanup_allowed(const FleetView& view, const LowerStatus& lower) {
    auto busy = view.busy_names();
    if (!busy.empty())
        throw Error(fmt::format("cleanup: containers are still running or mounted ({}): run "
                                "aplspawn stop first",
                                fmt::join(busy, ", ")));
    if (lower.mounted)
        throw Error(fmt::format("cleanup: the lower layer {} is still mounted: run aplspawn stop "
                                "first",
                                lower.mount_point.string()));
}

CleanupPlan plan_cleanup(const config::Config& c, const StateDir& state, const FleetView& view,
                         bool images) {
    CleanupPlan plan;
    std::vector<std::string> names;
    for (const auto& v : view.containers) names.push_back(v.name);

    plan.groups.push_back(group_of(c.paths.upper, names));
    plan.groups.push_back(group_of(c.paths.work, names));
    plan.groups.push_back(group_of(c.common.home_path, names));
    plan.groups.push_back(group_of(c.paths.lower, {c.image.name}));
    plan.groups.push_back(group_of(state.dir(), {"containers", "known_hosts", "lower"}));
    if (images) {
        if (is_under(c.paths.local_store, c.paths.working_dir)) {
            std::vector<std::string> all;
            std::error_code ec;
            for (const auto& e : fs::directory_iterator(c.paths.local_store, ec))
                all.push_back(e.path().filename().string());
            std::sort(all.begin(), all.end());
            plan.groups.push_back(group_of(c.paths.local_store, all));
        } else {
            plan.refused.push_back(fmt::format(
                "{} is not under the working directory {}, refusing to remove its content",
                c.paths.local_store.string(), c.paths.working_dir.string()));
        }
    }
    return plan;
}

Change apply_cleanup(const CleanupGroup& g) {
    Change changed = Change::unchanged;
    for (const auto& n : g.names) changed |= sys::remove_tree_at(g.dir, n);
    return changed;
}

}  // namespace aplspawn::fleet
