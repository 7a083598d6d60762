// spawn: from the store's image to N containers that answer SSH (docs/spawn.md). The fleet-wide
// steps run here in order (prerequisites, fleet key, what an interrupted run left, the lower
// layer); then every container is brought up at once (fleet::bring_up) and reported in name
// order. Exit 1 when any container did not come up; the others stay up.
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/fleet_key.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/settle.hpp"
#include "aplspawn/fleet/spawn.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace aplspawn::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxParallel = 64;

std::string already(Change c) { return c == Change::unchanged ? std::string(out::already_so) : ""; }

// The image must be in the store before anything is mounted.
fleet::ImageFile require_image(const config::Config& c) {
    auto img = fleet::current_image(c);
    if (!img)
        throw Error(fmt::format("image {} is not in the store {}: run aplspawn getimage first",
                                c.image.file_name, c.paths.local_store.string()));
    return *img;
}

// Settles what an interrupted run left (strays, dead records, orphaned mounts) before starting.
void settle_leftovers(const config::Config& c, const fleet::StateDir& state,
                      const fleet::FleetView& view, bool dry) {
    for (const auto& v : view.containers) {
        if (v.ready()) continue;
        fleet::Outcome o = fleet::settle(c, state, v, dry);
        out::print(o.lines);
        if (!o.ok) throw Error(fmt::format("could not settle what an interrupted run left of {}", v.name));
    }
}

void write_variables_file(const config::Config& c, const std::string& public_key, bool dry) {
    if (c.common.mode() != config::StartMode::script || c.common.variables_file.empty()) return;
    std::string text = fleet::variables_file_text(c, public_key);
    if (dry) {
        out::plan(fmt::format("Write the containers' variables to {}", c.common.variables_file.string()));
        return;
    }
    auto current = sys::read_file_if_exists(c.common.variables_file);
    if (current && *current == text) return;
    with_context(c.where("cntCommon.variablesFile"),
                 [&] { sys::write_file_atomic(c.common.variables_file, text, 0644); });
}

// Every booted container's systemd (and its services) takes inotify instances from root's
// per-user limit; Debian's default of 128 runs out at about 16 containers, and the container that
// hits it never starts sshd. Say so before it happens.
void note_inotify_limit(const config::Config& c) {
    if (c.common.mode() != config::StartMode::boot) return;
    constexpr int kPerContainer = 8;
    std::optional<std::string> text;
    try {
        text = sys::read_file_if_exists("/proc/sys/fs/inotify/max_user_instances");
    } catch (const Error&) {
        return;
    }
    if (!text) return;
    int limit = std::atoi(text->c_str());
    int needed = c.common.amount * kPerContainer + 32;
    if (limit <= 0 || limit >= needed) return;
    out::info(fmt::format("fs.inotify.max_user_instances is {}; {} booted containers need about {}: "
                          "raise it (sysctl -w fs.inotify.max_user_instances={}) or some will fail "
                          "to start their services",
                          limit, c.common.amount, needed, std::max(1024, needed)));
}

}  // namespace

Exit run_spawn(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    fleet::StateDir state(c);

    fleet::check_spawn_prerequisites(c);
    const fleet::ImageFile image = require_image(c);
    out::debug(fmt::format("image {}", image.path.string()));

    std::optional<sys::DirLock> lock;
    if (!dry) {
        with_context("Creating working directories", [&] {
            for (const auto& d : {c.paths.working_dir, c.paths.lower, c.paths.upper, c.paths.work,
                                  c.paths.state, c.common.home_path})
                sys::ensure_dir(d);
        });
        lock = sys::DirLock::acquire(state.dir(), "spawn");
    }
    fleet::check_upper_filesystem(c, !dry);
    note_inotify_limit(c);

    // The fleet key (generated on first use) and the line every container authorizes.
    std::string public_key;
    if (dry) {
        if (auto p = fleet::plan_fleet_key(c); !p.empty()) out::plan(p);
        else public_key = fleet::read_public_key(c);
    } else {
        Change k = with_context("Generating the fleet's SSH key", [&] { return fleet::ensure_fleet_key(c); });
        if (k == Change::changed)
            out::ok(fmt::format("Generating the fleet's SSH key {}", c.common.ssh_private_key.string()));
        public_key = with_context("Reading ssh public key", [&] { return fleet::read_public_key(c); });
        out::ok("Reading ssh public key");
    }
    write_variables_file(c, public_key.empty() ? "ssh-ed25519 KEY" : public_key, dry);

    fleet::FleetView view = fleet::observe(c, state);
    settle_leftovers(c, state, view, dry);
    if (!dry) {
        view = fleet::observe(c, state);
        fleet::remove_stale_cgroups();
    }

    // The lower layer, shared by the fleet; containers that run keep the version they run on.
    if (dry) {
        if (auto p = fleet::plan_lower(c, view.any_running()); !p.empty()) out::plan(p);
    }
    fs::path lower_mount;
    if (!dry) {
        fleet::LowerResult lower = with_context("Mounting the image as lower overlayFS layer", [&] {
            return fleet::ensure_lower(c, state, view.any_running());
        });
        out::ok(fmt::format("Mounting image root partition to loop {}{}", lower.loop_device,
                            already(lower.change)));
        out::ok(fmt::format("Mounting {} as lower overlayFS layer{}", lower.loop_device,
                            already(lower.change)));
        for (const auto& n : lower.notes) out::info(n);
        lower_mount = lower.mount_point;
    }

    const auto timeout = std::chrono::seconds(ctx.options.timeout_sec.value_or(c.common.ready_timeout_sec));
    std::unique_ptr<fleet::Launcher> launcher = fleet::make_launcher();
    out::debug(fmt::format("launcher: {}", launcher->kind()));
    fleet::KnownHostsFile known_hosts(state.known_hosts());
    fleet::BringUpContext bring{c,           state,      *launcher, known_hosts, lower_mount,
                                public_key, fleet::Clock::now() + timeout};

    const auto& containers = view.containers;
    std::vector<std::string> failed;
    std::size_t wanted = 0;
    fleet::run_ordered<fleet::Outcome>(
        containers.size(), kMaxParallel,
        [&](std::size_t i) {
            return dry ? fleet::plan_bring_up(c, containers[i]) : fleet::bring_up(bring, containers[i]);
        },
        [&](std::size_t i, fleet::Outcome& o) {
            out::separator();
            out::print(o.lines);
            if (containers[i].config) ++wanted;
            if (!o.ok) failed.push_back(o.name);
        });

    if (!failed.empty()) {
        out::separator();
        out::fail(fmt::format("{} of {} containers did not come up: {}", failed.size(), wanted,
                              fmt::join(failed, ", ")));
        return Exit::failed;
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
