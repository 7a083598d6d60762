#include "aplspawn/fleet/private_dirs.hpp"

#include "aplspawn/sys/fs.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::fleet {

std::vector<PrivateDir> private_dirs(const config::Config& c) {
    std::vector<PrivateDir> all{{"path.imageUpperPath", c.paths.upper},
                                {"path.imageWorkPath", c.paths.work},
                                {"path.imageLowerLayer", c.paths.lower},
                                {"path.stateDirectory", c.paths.state}};
    for (const auto& g : c.groups) all.push_back({g->origin("homePath"), g->common.home_path});
    std::vector<PrivateDir> out;
    for (auto& d : all)
        if (std::none_of(out.begin(), out.end(), [&](const PrivateDir& o) { return o.path == d.path; }))
            out.push_back(std::move(d));
    return out;
}

std::vector<Tightened> ensure_private_dirs(const config::Config& c) {
    std::vector<Tightened> out;
    for (auto& d : private_dirs(c)) {
        auto was = with_context(c.where(d.key), [&] { return sys::ensure_dir_restricted(d.path, 0700); });
        if (was) out.push_back({std::move(d), *was});
    }
    return out;
}

std::string describe(const Tightened& t) {
    return fmt::format("Restricted {} {} to {:04o} (it was {:04o}: host users could read the "
                       "containers' files through it)",
                       t.dir.key, t.dir.path.string(), t.was & 0700, t.was);
}

}  // namespace aplspawn::fleet
