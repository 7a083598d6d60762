#include "aplspawn/fleet/reset.hpp"

#include "aplspawn/fleet/layer.hpp"
#include "aplspawn/fleet/stop.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/remove_tree.hpp"
#include "aplspawn/sys/rootfs.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

const std::vector<std::string>& reset_kept_files() {
    static const std::vector<std::string> files{"/etc/machine-id", "/var/lib/aplspawn/provision"};
    return files;
}

Outcome reset_data(const StateDir& state, const ContainerView& v, const fs::path& lower,
                   std::chrono::seconds grace) {
    Outcome o{v.name, true, {}};
    if (v.busy()) {
        Outcome stopped = stop_container(state, v, grace);
        o.lines = stopped.lines;
        if (!stopped.ok) {
            o.ok = false;
            return o;
        }
    }
    std::string step = fmt::format("Resetting {} to its image (its host keys and machine-id kept)",
                                   v.name);
    try {
        struct Kept {
            std::string path, content;
            sys::FileAttrs attrs;
        };
        std::vector<Kept> kept;
        if (std::filesystem::exists(v.dirs.upper)) {
            sys::RootFs upper(v.dirs.upper);
            std::vector<std::string> paths = reset_kept_files();
            for (const auto& name : upper.list_dir("/etc/ssh"))
                if (name.starts_with("ssh_host_")) paths.push_back("/etc/ssh/" + name);
            for (const auto& p : paths) {
                auto st = upper.symlink_status(p);
                if (!st || !S_ISREG(st->st_mode)) continue;
                kept.push_back({p, upper.read_file(p).value_or(""),
                                {static_cast<mode_t>(st->st_mode & 07777), {st->st_uid, st->st_gid}}});
            }
        }
        for (const auto& dir : {v.dirs.upper, v.dirs.work})
            sys::remove_tree_at(dir.parent_path(), dir.filename().string());
        sys::ensure_dir(v.dirs.upper, 0755);
        sys::RootFs upper(v.dirs.upper);
        sys::RootFs image(lower);
        LayerWriter w(upper, image);
        for (const auto& k : kept) w.write(k.path, k.content, k.attrs);
        o.lines.push_back({out::Kind::ok, step});
        o.lines.push_back({out::Kind::debug, fmt::format("  kept {} files", kept.size())});
    } catch (const std::exception& e) {
        o.ok = false;
        o.lines.push_back({out::Kind::fail, fmt::format("{}: {}", step, e.what())});
    }
    return o;
}

}  // namespace aplspawn::fleet
