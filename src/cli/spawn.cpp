// spawn: from the store's images to containers that answer SSH (docs/spawn.md). The fleet-wide
// steps run here in order (prerequisites, fleet keys, what an interrupted run left, each image's
// lower layer); then every selected container is brought up at once (fleet::bring_up) and
// reported in name order. Exit 1 when any container did not come up; the others stay up.
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/fleet_key.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/lxcfs.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/private_dirs.hpp"
#include "aplspawn/fleet/settle.hpp"
#include "aplspawn/fleet/host_limits.hpp"
#include "aplspawn/fleet/spawn.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

namespace aplspawn::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxParallel = 64;

std::string already(Change c) { return c == Change::unchanged ? std::string(out::already_so) : ""; }

// The images of the selected containers, each once, in fleet order.
std::vector<const config::Image*> images_of(const std::vector<const config::Container*>& cts) {
    std::vector<const config::Image*> out;
    for (const auto* ct : cts)
        if (std::none_of(out.begin(), out.end(),
                         [&](const config::Image* im) { return im->name == ct->image().name; }))
            out.push_back(&ct->image());
    return out;
}

// Every image must be in the store before anything is mounted.
void require_images(const config::Config& c, const std::vector<const config::Image*>& images) {
    for (const auto* im : images) {
        auto img = fleet::current_image(c, *im);
        if (!img && im->from_store()) throw fleet::missing_snapshot(c, *im);
        if (!img)
            throw Error(fmt::format("image {} is not in the store {}: run aplspawn getimage first",
                                    im->file_name, c.paths.local_store.string()));
        out::debug(fmt::format("image {}", img->path.string()));
    }
}

// A container the config no longer has (a group's amount went down) must not be left running
// unnoticed: spawn stops before anything changes and says how to stop it.
void refuse_leftovers(const fleet::FleetView& view) {
    auto left = view.busy_leftovers();
    if (left.empty()) return;
    throw Error(fmt::format("{} {} no longer in the config but still {}: stop {} first "
                            "(aplspawn stop {})",
                            fmt::join(left, ", "), left.size() == 1 ? "is" : "are",
                            left.size() == 1 ? "runs" : "run", left.size() == 1 ? "it" : "them",
                            fmt::join(left, " ")));
}

// Settles what an interrupted run left (strays, dead records, orphaned mounts) before starting.
void settle_leftovers(const fleet::StateDir& state, const fleet::FleetView& view, bool dry) {
    for (const auto& v : view.containers) {
        if (v.ready()) continue;
        fleet::Outcome o = fleet::settle(state, v, dry);
        out::print(o.lines);
        if (!o.ok) throw Error(fmt::format("could not settle what an interrupted run left of {}", v.name));
    }
}

// Script mode's variables files (cntCommon.variablesFile), one per group that has one.
void write_variables_files(const config::Config& c, const std::vector<const config::Container*>& cts,
                           const std::map<std::string, std::string>& keys, bool dry) {
    std::set<const config::Group*> done;
    for (const auto* ct : cts) {
        const config::Group& g = *ct->group;
        if (!done.insert(&g).second) continue;
        const auto& k = g.common;
        if (k.mode() != config::StartMode::script || k.variables_file.empty()) continue;
        auto key = keys.find(g.name);
        std::string text =
            fleet::variables_file_text(g, key == keys.end() ? "ssh-ed25519 KEY" : key->second);
        if (dry) {
            out::plan(fmt::format("Write the containers' variables to {}", k.variables_file.string()));
            continue;
        }
        auto current = sys::read_file_if_exists(k.variables_file);
        if (current && *current == text) continue;
        with_context(c.where(g.origin("variablesFile")),
                     [&] { sys::write_file_atomic(k.variables_file, text, 0644); });
    }
}

// Host-wide limits (fleet/host_limits.hpp): a known shortfall stops the run before anything
// starts. Containers that run already hold their share; only the ones to start count. aplspawn's
// own open files it raises itself, within the hard limit.
void check_host_limits(const config::Config& c, const std::vector<const config::Container*>& cts,
                       const fleet::FleetView& view, bool dry) {
    fleet::Demand d;
    d.fleet_size = static_cast<long>(c.fleet.size());
    d.workers = static_cast<long>(std::min(view.containers.size(), kMaxParallel));
    std::vector<std::string> bridges{c.bridge.name};
    for (const auto* ct : cts) {
        auto v = std::find_if(view.containers.begin(), view.containers.end(),
                              [&](const auto& x) { return x.name == ct->name; });
        if (v != view.containers.end() && v->busy()) continue;
        if (ct->common().mode() == config::StartMode::boot) ++d.booted;
        ++d.new_ports[c.bridge.name];
        for (const auto& nr : ct->group->networks) {
            ++d.new_ports[nr.network->bridge];
            bridges.push_back(nr.network->bridge);
        }
    }
    auto shortfalls = fleet::limit_shortfalls(fleet::read_host_counts(bridges), d);
    if (!shortfalls.empty()) {
        for (std::size_t i = 1; i < shortfalls.size(); ++i) out::fail(shortfalls[i]);
        throw Error(shortfalls[0]);
    }
    if (!dry) fleet::raise_open_files(fleet::open_files_needed(d.workers));
}

}  // namespace

Exit run_spawn(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    fleet::StateDir state(c);
    const fleet::Selection selection = fleet::select_targets(c, state, ctx.options.targets);
    const std::vector<const config::Container*> selected = selection.of(c);
    const std::vector<const config::Image*> images = images_of(selected);

    fleet::check_spawn_prerequisites(c, selected);
    const bool limits = std::any_of(selected.begin(), selected.end(),
                                    [](const config::Container* ct) { return ct->group->resources.any(); });
    if (limits) fleet::require_lxcfs();
    require_images(c, images);

    std::optional<sys::DirLock> lock;
    if (!dry) {
        with_context("Creating working directories", [&] {
            sys::ensure_dir(c.paths.working_dir);
            for (const auto& t : fleet::ensure_private_dirs(c)) out::info(fleet::describe(t));
        });
        lock = sys::DirLock::acquire(state.dir(), "spawn");
    }
    fleet::FleetView view = fleet::observe(c, state);
    refuse_leftovers(view);
    fleet::check_upper_filesystem(c, !dry);
    check_host_limits(c, selected, view, dry);

    // The fleet keys (generated on first use) and the line each group's containers authorize.
    std::map<std::string, std::string> keys;
    for (const auto& pair : fleet::key_pairs(c)) {
        if (dry) {
            if (auto p = fleet::plan_fleet_key(c, pair); !p.empty()) out::plan(p);
            continue;
        }
        Change k = with_context("Generating the fleet's SSH key",
                                [&] { return fleet::ensure_fleet_key(c, pair); });
        if (k == Change::changed)
            out::ok(fmt::format("Generating the fleet's SSH key {}", pair.private_key.string()));
    }
    for (const auto& g : c.groups) {
        if (dry && !fs::exists(g->vars.ssh_public_key)) continue;
        keys[g->name] = with_context("Reading ssh public key",
                                     [&] { return fleet::read_public_key(c, *g); });
    }
    if (!dry) out::ok("Reading ssh public key");
    write_variables_files(c, selected, keys, dry);

    const fleet::FleetView mine = selection.of(view);
    settle_leftovers(state, mine, dry);
    if (!dry) {
        view = fleet::observe(c, state);
        fleet::remove_stale_cgroups();
    }

    // Each image's lower layer, shared by its containers; containers that run keep the version
    // they run on.
    std::map<std::string, fs::path> lowers;
    for (const auto* im : images) {
        fleet::LowerPlan plan = fleet::plan_lower(c, *im, view.any_running_on(im->name));
        if (dry) {
            if (auto p = plan.describe(); !p.empty()) out::plan(p);
            continue;
        }
        fleet::LowerResult lower = with_context("Mounting the image as lower overlayFS layer", [&] {
            return fleet::apply_lower(state, std::move(plan));
        });
        std::string of = images.size() > 1 ? fmt::format(" ({})", im->name) : "";
        out::ok(fmt::format("Mounting image root partition to loop {}{}{}", lower.loop_device, of,
                            already(lower.change)));
        out::ok(fmt::format("Mounting {} as lower overlayFS layer{}{}", lower.loop_device, of,
                            already(lower.change)));
        for (const auto& n : lower.notes) out::info(n);
        lowers[im->name] = lower.mount_point;
    }

    std::unique_ptr<fleet::Launcher> launcher = fleet::make_launcher();
    out::debug(fmt::format("launcher: {}", launcher->kind()));
    // lxcfs shows each container its own /proc/meminfo, cpuinfo, uptime, ... (fleet/lxcfs.hpp).
    std::optional<fleet::LxcfsView> lxcfs;
    if (dry) {
        if (!fleet::find_lxcfs()) out::plan(fmt::format("Start lxcfs at {}", fleet::kLxcfsDir));
    } else {
        auto lx = with_context("Starting lxcfs", [&] { return fleet::ensure_lxcfs(state, limits); });
        if (!lx.note.empty()) out::info(lx.note);
        if (lx.view)
            out::ok(fmt::format("lxcfs at {} shows each container its own /proc{}", lx.view->dir.string(),
                                already(lx.change)));
        lxcfs = lx.view;
    }
    fleet::KnownHostsFile known_hosts(state.known_hosts());
    std::optional<std::chrono::seconds> timeout;
    if (ctx.options.timeout_sec) timeout = std::chrono::seconds(*ctx.options.timeout_sec);
    fleet::BringUpContext bring{c,
                                state,
                                *launcher,
                                known_hosts,
                                std::move(lowers),
                                std::move(keys),
                                fleet::fleet_hosts(c),
                                fleet::Clock::now(),
                                timeout,
                                lxcfs};

    // The selected containers are brought up; the others of the config that run are only kept
    // up to date (their /etc/hosts names the whole fleet).
    std::vector<fleet::ContainerView> containers;
    for (const auto& v : view.containers) {
        if (!v.config && !v.busy()) continue;  // data of a container the config no longer has
        if (selection.contains(v.name) || (v.config && v.ready())) containers.push_back(v);
    }
    if (!dry) {
        // Their data is the fleet's until cleanup, also once the config no longer has them.
        std::vector<std::pair<std::string, std::string>> members;
        for (const auto* ct : selected) members.emplace_back(ct->name, ct->group->name);
        with_context("record the fleet's members", [&] { state.add_members(members); });
    }
    std::vector<std::string> failed;
    std::size_t wanted = 0;
    fleet::run_ordered<fleet::Outcome>(
        containers.size(), kMaxParallel,
        [&](std::size_t i) {
            const auto& v = containers[i];
            if (!selection.contains(v.name)) return dry ? fleet::Outcome{v.name, true, {}}
                                                        : fleet::keep_hosts(bring, v);
            return dry ? fleet::plan_bring_up(c, v) : fleet::bring_up(bring, v);
        },
        [&](std::size_t i, fleet::Outcome& o) {
            const bool chosen = selection.contains(containers[i].name);
            if (chosen || !o.lines.empty()) {
                out::separator();
                out::print(o.lines);
            }
            if (chosen && containers[i].config) ++wanted;
            if (!o.ok) failed.push_back(o.name);
        },
        [&](std::size_t i, const Error& e) { return fleet::failed_outcome(containers[i].name, e); });

    if (!failed.empty()) {
        out::separator();
        out::fail(fmt::format("{} of {} containers did not come up: {}", failed.size(), wanted,
                              fmt::join(failed, ", ")));
        return Exit::failed;
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
