#include "aplspawn/fleet/cleanup.hpp"

#include "aplspawn/image/store.hpp"
#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/remove_tree.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

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

void check_cleanup_allowed(const FleetView& view, const std::vector<LowerStatus>& lowers) {
    auto busy = view.busy_names();
    if (!busy.empty())
        throw Error(fmt::format("cleanup: containers are still running, mounted or in a network "
                                "namespace of aplspawn's ({}): run aplspawn stop first",
                                fmt::join(busy, ", ")));
    for (const auto& lower : lowers)
        if (lower.mounted)
            throw Error(fmt::format("cleanup: the lower layer {} is still mounted: run aplspawn "
                                    "stop first",
                                    lower.mount_point.string()));
}

CleanupPlan plan_cleanup(const config::Config& c, const StateDir& state, const FleetView& view,
                         bool whole_fleet, bool images, bool force) {
    CleanupPlan plan;
    std::vector<std::string> names;
    std::map<fs::path, std::vector<std::string>> homes;  // merged directories, by homePath
    for (const auto& v : view.containers) {
        names.push_back(v.name);
        homes[v.dirs.merged.parent_path()].push_back(v.name);
    }

    plan.groups.push_back(group_of(c.paths.upper, names));
    plan.groups.push_back(group_of(c.paths.work, names));
    for (const auto& [home, in_home] : homes) plan.groups.push_back(group_of(home, in_home));
    if (!whole_fleet) {
        std::vector<std::string> files;
        for (const auto& n : names)
            for (const char* ext : {".json", ".log", ".log.1"}) files.push_back(n + ext);
        plan.groups.push_back(group_of(state.containers_dir(), files));
        return plan;
    }
    std::vector<std::string> lowers = recorded_lowers(state);
    for (const auto* im : c.images()) lowers.push_back(im->name);
    std::sort(lowers.begin(), lowers.end());
    lowers.erase(std::unique(lowers.begin(), lowers.end()), lowers.end());
    plan.groups.push_back(group_of(c.paths.lower, lowers));
    plan.groups.push_back(group_of(state.dir(), {"containers", "known_hosts", "lower", "members", "networks"}));
    if (images) {
        if (!is_under(c.paths.local_store, c.paths.working_dir)) {
            plan.refused.push_back(fmt::format(
                "{} is not under the working directory {}, refusing to remove its content",
                c.paths.local_store.string(), c.paths.working_dir.string()));
            return plan;
        }
        // The images the config's groups use stay unless forced: a snapshot may be the only
        // copy of a prepared host.
        std::vector<std::string> kept;
        if (!force)
            for (const auto* im : c.images())
                if (sys::exists_at(c.paths.local_store, im->file_name)) kept.push_back(im->file_name);
        std::vector<std::string> all;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(c.paths.local_store, ec))
            all.push_back(e.path().filename().string());
        std::sort(all.begin(), all.end());
        if (kept.empty()) {
            plan.groups.push_back(group_of(c.paths.local_store, all));
        } else {
            for (const auto& k : kept)
                plan.refused.push_back(fmt::format("{} kept: a group of the config uses it "
                                                   "(cleanup --images --force removes it too)",
                                                   (c.paths.local_store / k).string()));
            std::vector<std::string> unused;
            for (const auto& n : image::store_names(c.paths.local_store))
                if (std::find(kept.begin(), kept.end(), n) == kept.end()) unused.push_back(n);
            plan.groups.push_back(group_of(c.paths.local_store, unused));
            plan.pruned_images = unused;
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
