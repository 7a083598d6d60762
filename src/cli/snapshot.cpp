// snapshot CONTAINER NAME: the container's whole root as it is now becomes the image NAME.img in
// the local store (docs/snapshots.md). A running container is stopped for the copy and spawned
// again afterwards, as it was.
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/snapshot.hpp"
#include "aplspawn/fleet/stop.hpp"
#include "aplspawn/image/pull.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace aplspawn::cli {

Exit run_snapshot(const Context& ctx) {
    const config::Config& c = ctx.config;
    const Options& o = ctx.options;
    if (o.targets.size() != 2)
        throw Error::usage("snapshot: give the container and the snapshot's name: aplspawn snapshot "
                           "CONTAINER NAME");
    const std::string& container = o.targets[0];
    const std::string& name = o.targets[1];
    if (!config::is_valid_image_name(name))
        throw Error::usage(fmt::format("snapshot: '{}' is not an image name (letters, digits, '.', "
                                       "'_', '-'; at most 64; without .img)",
                                       name));
    const config::Container* ct = c.find(container);
    if (!ct)
        throw Error::usage(fmt::format("snapshot: {} is not a container of the fleet in {} "
                                       "(aplspawn names lists them)",
                                       container, c.file.filename().string()));
    const std::string file_name = name + ".img";
    const image::Store store(c.paths.local_store, file_name);
    if (store.current() && !o.force)
        throw Error(fmt::format("snapshot: the store {} has an image {} already: choose another name, "
                                "or --force to replace it",
                                c.paths.local_store.string(), file_name));
    for (const auto& g : c.groups)
        if (g->image.file_name == file_name && !g->image.from_store() && !o.force)
            throw Error(fmt::format("snapshot: {} is the store name of group {}'s image {}: choose "
                                    "another name, or --force",
                                    file_name, g->name, g->image.url));

    fleet::StateDir state(c);
    const fleet::FleetView view = fleet::observe(c, state);
    const auto v = std::find_if(view.containers.begin(), view.containers.end(),
                                [&](const auto& x) { return x.name == container; });
    if (!std::filesystem::exists(v->dirs.upper))
        throw Error(fmt::format("snapshot: {} has no data yet ({} does not exist): spawn it first",
                                container, v->dirs.upper.string()));
    if (o.dry_run) {
        if (v->busy()) out::plan(fmt::format("Stop {} for the copy, and spawn it again after", container));
        out::plan(fmt::format("Pack {} ({} and its changes) into {}/{}", container,
                              ct->image().name, c.paths.local_store.string(), file_name));
        return Exit::ok;
    }

    fleet::SnapshotSpec spec;
    spec.name = name;
    spec.container = container;
    spec.group = ct->group->name;
    spec.ip = ct->ip;
    spec.user = ct->vars().user_name;
    spec.upper = v->dirs.upper;
    spec.base_image = ct->image().name;
    if (auto f = fleet::current_image(c, ct->image())) spec.base_size = f->size;
    // Before the container is stopped: a store without room leaves it running.
    fleet::check_snapshot_room(c.paths.local_store, spec);

    const bool was_running = v->busy();
    std::optional<Error> failure;
    try {
        sys::DirLock lock = sys::DirLock::acquire(state.dir(), "snapshot");
        if (was_running) {
            out::info(fmt::format("{} runs: stopping it for a consistent copy", container));
            fleet::Outcome stopped = fleet::stop_container(state, *v, std::chrono::seconds(30));
            out::print(stopped.lines);
            if (!stopped.ok) return Exit::failed;
        }
        const fleet::FleetView now = fleet::observe(c, state);
        fleet::LowerResult lower = with_context("Mounting the image as lower overlayFS layer", [&] {
            return fleet::ensure_lower(c, ct->image(), state, now.any_running_on(ct->image().name));
        });
        spec.lower = lower.mount_point;
        out::info(fmt::format("Packing {} into {} (squashfs, zstd)", container, file_name));
        fleet::SnapshotResult r = fleet::make_snapshot(c.paths.local_store, spec);
        for (const auto& l : r.left_out) out::debug("  " + l);
        out::ok(fmt::format("Snapshot of {} stored as {} in {} (size {}, sha256 {})", container,
                            file_name, c.paths.local_store.string(), image::mebibytes(r.packed.size),
                            r.packed.sha256));
        // The lower layer goes again when nothing runs on it (a stopped fleet stays unmounted).
        if (!was_running && !fleet::observe(c, state).any_running_on(ct->image().name) &&
            lower.change == Change::changed)
            fleet::release_lower(c, ct->image().name, state);
    } catch (const Error& e) {
        if (!was_running) throw;
        failure = e;  // the container comes back first, then the error is told
    }
    if (!was_running) return Exit::ok;
    out::info(fmt::format("Bringing {} back", container));
    Options again = o;
    again.targets = {container};
    again.force = false;
    Exit back = run_spawn(Context{c, again});
    if (failure) throw *failure;
    return back;
}

}  // namespace aplspawn::cli
