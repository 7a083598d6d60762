#include "aplspawn/fleet/settle.hpp"

#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/overlay.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

using namespace std::chrono_literals;

Outcome settle(const StateDir& state, const ContainerView& v, bool dry_run) {
    Outcome o{v.name, true, {}};
    auto note = [&](std::string text) {
        o.lines.push_back({dry_run ? out::Kind::plan : out::Kind::ok, std::move(text)});
    };
    try {
        auto detached = make_detached_launcher();
        for (const auto& s : v.strays) {
            std::string what = fmt::format("Stopping systemd-nspawn for {} (pid {}) that an "
                                           "interrupted run left unrecorded",
                                           v.name, s.process.pid);
            if (dry_run) {
                note(what);
                continue;
            }
            ContainerRecord r;
            r.name = v.name;
            r.mode = v.mode();
            r.set_nspawn(s.process);
            if (detached->stop(r, 10s) == Change::changed) note(what);
        }
        if (v.record && !v.running) {
            // The process is gone; its container may not be (nspawn killed alone).
            if (!dry_run && detached->stop(*v.record, 10s) == Change::changed)
                note(fmt::format("Stopping the container {} whose systemd-nspawn was killed", v.name));
            if (dry_run) note(fmt::format("Removing the stale record of {}", v.name));
            else state.remove(v.name);
        }
        if (v.network_recorded && !v.running) {
            // Nothing runs in it (strays and a dead record's container were stopped above).
            std::string what = fmt::format("Removing the network an interrupted run left of {} "
                                           "(namespace {})",
                                           v.name, netns_name(v.name));
            if (dry_run) {
                note(what);
            } else {
                net::Teardown t = remove_network(state, v.name);
                for (const auto& n : t.notes) o.lines.push_back({out::Kind::info, n});
                if (t.change == Change::changed) note(what);
            }
        }
        if (v.merged_mounted && !v.running) {
            if (dry_run) {
                note(fmt::format("Umount overlayFS {} (nothing runs on it)", v.dirs.merged.string()));
            } else if (remove_overlay(v.dirs) == Change::changed) {
                note(fmt::format("Umount overlayFS {} (nothing ran on it)", v.dirs.merged.string()));
            }
        }
    } catch (const Error& e) {
        o.ok = false;
        o.lines.push_back({out::Kind::fail, fmt::format("Cleaning up {}: {}", v.name, e.message())});
    }
    return o;
}

}  // namespace aplspawn::fleet
