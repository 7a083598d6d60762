// getimage: download the OS image into the local store, verified and resumable. The steps and
// their lines are the original's; the decisions are image::precheck and image::pull.
#include "aplspawn/fleet/private_dirs.hpp"
#include "aplspawn/image/progress.hpp"
#include "aplspawn/image/pull.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <variant>

namespace aplspawn::cli {
namespace {

namespace fs = std::filesystem;

// The working directories, then those that hold container data (fleet/private_dirs.hpp: 0700).
std::vector<fs::path> working_dirs(const config::Config& c) {
    std::vector<fs::path> dirs{c.paths.working_dir, c.paths.local_store};
    for (const auto& d : fleet::private_dirs(c)) dirs.push_back(d.path);
    return dirs;
}

image::Progress::Mode progress_mode() {
    if (out::settings().verbosity == out::Verbosity::quiet) return image::Progress::Mode::off;
    return out::is_terminal(STDERR_FILENO) ? image::Progress::Mode::bar : image::Progress::Mode::lines;
}

std::string rate_text(std::uint64_t bytes, std::chrono::duration<double> t) {
    if (t.count() <= 0) return "";
    return fmt::format("{}/s", image::format_bytes(static_cast<std::uint64_t>(static_cast<double>(bytes) / t.count())));
}

}  // namespace

namespace {

// One image: the original's lines for it (its prechecks made already), then the download.
void get_one(const config::Config& c, const config::Image& im, image::PullRequest& req,
             image::Prechecks checks, bool dry) {
    image::Progress progress(fmt::format("Downloading {}", im.file_name), progress_mode());
    checks.request.fetch.on_retry = [&](const std::string& why, int attempt,
                                        std::chrono::milliseconds pause) {
        progress.clear();
        out::info(fmt::format("Transfer interrupted ({}); retrying in {:.0f} s (attempt {} of {})", why,
                              std::chrono::duration<double>(pause).count(), attempt, req.fetch.attempts));
    };
    out::info("URL: " + im.url);
    if (checks.source == image::ChecksumSource::none)
        out::info(fmt::format("The image cannot be verified: {}", checks.no_checksum_why));

    if (checks.up_to_date) {
        if (checks.record_current && !dry)
            with_context(fmt::format("record image {}", im.file_name),
                         [&] { image::record_current(checks); });
        out::ok(fmt::format("Image {} in {} is already up to date ({})", im.file_name,
                            c.paths.local_store.string(), checks.up_to_date_why));
        return;
    }

    auto size_text = [](std::optional<std::uint64_t> s) { return s ? image::mebibytes(*s) : std::string("unknown"); };
    if (dry) {
        out::plan(fmt::format("download image {} (size {}) to {} (free space {}){}", im.file_name,
                              size_text(checks.remote.size), c.paths.local_store.string(),
                              image::mebibytes(checks.free_bytes),
                              checks.resume_from ? fmt::format(", resuming at {}", image::mebibytes(checks.resume_from))
                                                 : std::string()));
        return;
    }
    if (checks.resume_from > 0)
        out::info(fmt::format("Resuming the download of {} at {} of {}", im.file_name,
                              image::format_bytes(checks.resume_from), size_text(checks.remote.size)));

    image::PullEvents events;
    events.start = [&](std::uint64_t offset, std::optional<std::uint64_t> total) {
        if (offset == 0 && checks.resume_from > 0) {
            progress.clear();
            out::info("The server sent the whole image instead of the rest (it ignores Range, or the "
                      "image changed): starting over");
        }
        progress.start(offset, total);
    };
    events.progress = [&](std::uint64_t position, std::optional<std::uint64_t> total) {
        progress.update(position, total);
    };
    image::PullResult r = with_context(fmt::format("Downloading image {}", im.file_name), [&] {
        try {
            return image::pull(checks, events);
        } catch (...) {
            progress.finish();
            throw;
        }
    });
    progress.finish();

    out::ok(fmt::format("Downloading image {} (size {}) to {} (free space {})", im.file_name,
                        image::mebibytes(r.size), c.paths.local_store.string(),
                        image::mebibytes(checks.free_bytes)));
    out::debug(fmt::format("received {} in {:.1f} s ({})", image::format_bytes(r.received), r.elapsed.count(),
                           rate_text(r.received, r.elapsed)));
    if (r.verified)
        out::ok(fmt::format("Verifying image checksum: sha256 {} matches {}", r.published_sha256,
                            image::checksum_source_text(checks)));
    out::debug(fmt::format("stored as {}", r.version.path.string()));
    for (const auto& [version, devices] : r.pruned.in_use)
        out::info(fmt::format("The previous version {} stays: {} uses it, until its fleet is respawned or cleaned up",
                              version.string(), fmt::join(devices, ", ")));
    for (const auto& removed : r.pruned.removed) out::debug(fmt::format("removed unused version {}", removed.string()));
}

}  // namespace

Exit run_getimage(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    const fleet::Selection selection =
        fleet::select_targets(c, fleet::StateDir(c), ctx.options.targets);
    std::vector<const config::Image*> images;
    for (const auto* ct : selection.of(c))
        if (std::none_of(images.begin(), images.end(),
                         [&](const config::Image* im) { return im->file_name == ct->image().file_name; }))
            images.push_back(&ct->image());
    // Snapshots are made here, not downloaded: they only have to be in the store.
    std::vector<const config::Image*> snapshots;
    std::erase_if(images, [&](const config::Image* im) {
        if (im->from_store()) snapshots.push_back(im);
        return im->from_store();
    });
    for (const auto* im : snapshots) {
        if (!fleet::current_image(c, *im)) throw fleet::missing_snapshot(c, *im);
        out::ok(fmt::format("Image {} is a snapshot in {}: nothing to download", im->file_name,
                            c.paths.local_store.string()));
    }

    const std::string step_dirs = "Creating working directories";
    if (dry) {
        for (const auto& d : working_dirs(c))
            if (!fs::exists(d)) out::plan(fmt::format("create directory {}", d.string()));
    } else {
        Change changed = Change::unchanged;
        std::vector<fleet::Tightened> tightened;
        with_context(step_dirs, [&] {
            for (const auto& d : working_dirs(c))
                if (!fs::exists(d)) changed = Change::changed;
            changed |= sys::ensure_dir(c.paths.working_dir);
            changed |= sys::ensure_dir(c.paths.local_store);
            tightened = fleet::ensure_private_dirs(c);
        });
        out::ok(changed == Change::changed ? step_dirs : step_dirs + std::string(out::already_so));
        for (const auto& t : tightened) out::info(fleet::describe(t));
    }

    // Every image's prechecks at once (each asks its server for the image's size and checksum),
    // then the downloads one after another, each with its own progress.
    std::vector<image::PullRequest> requests(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        auto& req = requests[i];
        req.url = images[i]->url;
        req.sha256 = images[i]->sha256;
        req.store = c.paths.local_store;
        req.name = images[i]->file_name;
        // Retries while checking (no progress bar is showing yet); get_one sets its own.
        req.fetch.on_retry = [&req](const std::string& why, int attempt, std::chrono::milliseconds pause) {
            out::info(fmt::format("Transfer interrupted ({}); retrying in {:.0f} s (attempt {} of {})",
                                  why, std::chrono::duration<double>(pause).count(), attempt,
                                  req.fetch.attempts));
        };
    }
    using Checked = std::variant<image::Prechecks, Error>;
    std::vector<std::optional<Checked>> checked(images.size());
    fleet::run_ordered<Checked>(
        images.size(), 8,
        [&](std::size_t i) -> Checked {
            try {
                return image::precheck(requests[i]);
            } catch (const Error& e) {
                return e;
            } catch (const std::exception& e) {
                return Error(e.what());
            }
        },
        [&](std::size_t i, Checked& r) { checked[i] = std::move(r); });

    const bool several = images.size() > 1;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
        const config::Image& im = *images[i];
        const std::string step_checks =
            several ? fmt::format("Executing prechecks for image download ({})", im.file_name)
                    : std::string("Executing prechecks for image download");
        try {
            if (auto* e = std::get_if<Error>(&*checked[i])) throw std::move(*e).wrap(step_checks);
            out::ok(step_checks);
            get_one(c, im, requests[i], std::get<image::Prechecks>(std::move(*checked[i])), dry);
        } catch (const Error& e) {
            if (!several) throw;
            out::fail(e.message());
            ++failed;
        }
    }
    if (failed > 0) {
        out::fail(fmt::format("{} of {} images are not in the store", failed, images.size()));
        return Exit::failed;
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
