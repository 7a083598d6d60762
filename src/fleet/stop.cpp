#include "aplspawn/fleet/stop.hpp"

#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/overlay.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {
namespace {

// The launcher that started the record: the systemd one when it exists (it knows the unit),
// else the detached one, which stops any nspawn by pid (a unit's MainPID included).
std::unique_ptr<Launcher> launcher_for(const ContainerRecord& r) {
    if (r.launcher == "systemd")
        if (auto l = make_systemd_launcher()) return l;
    return make_detached_launcher();
}

}  // namespace

Outcome plan_stop(const ContainerView& v) {
    Outcome o{v.name, true, {}};
    auto plan = [&](std::string t) { o.lines.push_back({out::Kind::plan, std::move(t)}); };
    if (v.record && v.running)
        plan(fmt::format("Stopping container {} (pid {})", v.name, v.record->nspawn_pid));
    for (const auto& s : v.strays)
        plan(fmt::format("Stopping container {} started by an interrupted run (pid {})", v.name,
                         s.process.pid));
    if (v.network_recorded)
        plan(fmt::format("Remove the network of {} (namespace {} and its veths)", v.name, netns_name(v.name)));
    if (v.merged_mounted) plan(fmt::format("Umount overlayFS {}", v.dirs.merged.string()));
    if (o.lines.empty())
        o.lines.push_back({out::Kind::ok, fmt::format("Stopping container {}{}", v.name, out::already_so)});
    return o;
}

Outcome stop_container(const StateDir& state, const ContainerView& v, std::chrono::seconds grace) {
    Outcome o{v.name, true, {}};
    auto ok = [&](std::string t) { o.lines.push_back({out::Kind::ok, std::move(t)}); };
    std::string step;
    try {
        bool did = false;
        if (v.record) {
            step = fmt::format("Stopping container {} (pid {})", v.name, v.record->nspawn_pid);
            // Also when its nspawn is gone: the container itself may have outlived it.
            if (launcher_for(*v.record)->stop(*v.record, grace) == Change::changed) {
                ok(step);
                did = true;
            }
        }
        for (const auto& s : v.strays) {
            step = fmt::format("Stopping container {} started by an interrupted run (pid {})", v.name,
                               s.process.pid);
            ContainerRecord r;
            r.name = v.name;
            r.mode = v.mode();
            r.set_nspawn(s.process);
            make_detached_launcher()->stop(r, grace);
            ok(step);
            did = true;
        }
        // Nothing runs in it any more: its namespace and veths go (the bridge ports with them).
        step = fmt::format("Removing the network of {} (namespace {})", v.name, netns_name(v.name));
        net::Teardown net = remove_network(state, v.name);
        for (const auto& n : net.notes) o.lines.push_back({out::Kind::info, n});
        if (net.change == Change::changed) {
            ok(step);
            did = true;
        }
        step = fmt::format("Umount overlayFS {}", v.dirs.merged.string());
        if (remove_overlay(v.dirs) == Change::changed) {
            ok(step);
            did = true;
        }
        if (v.record) state.remove(v.name);  // the log stays, for a look at how it ended
        if (!did) ok(fmt::format("Stopping container {}{}", v.name, out::already_so));
    } catch (const std::exception& e) {
        o.ok = false;
        o.lines.push_back({out::Kind::fail, fmt::format("{}: {}", step, e.what())});
    }
    return o;
}

}  // namespace aplspawn::fleet
