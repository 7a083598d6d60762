// getimage: download the OS image into the local store, verified and resumable. The steps and
// their lines are the original's; the decisions are image::precheck and image::pull.
#include "aplspawn/image/progress.hpp"
#include "aplspawn/image/pull.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

namespace aplspawn::cli {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> working_dirs(const config::Config& c) {
    return {c.paths.working_dir, c.paths.local_store, c.paths.lower,
            c.paths.upper,       c.paths.work,        c.paths.state};
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

Exit run_getimage(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;

    const std::string step_dirs = "Creating working directories";
    if (dry) {
        for (const auto& d : working_dirs(c))
            if (!fs::exists(d)) out::plan(fmt::format("create directory {}", d.string()));
    } else {
        Change changed = Change::unchanged;
        with_context(step_dirs, [&] {
            for (const auto& d : working_dirs(c)) changed |= sys::ensure_dir(d);
        });
        out::ok(changed == Change::changed ? step_dirs : step_dirs + std::string(out::already_so));
    }

    image::Progress progress(fmt::format("Downloading {}", c.image.file_name), progress_mode());
    image::PullRequest req;
    req.url = c.image.url;
    req.sha256 = c.image.sha256;
    req.store = c.paths.local_store;
    req.name = c.image.file_name;
    req.fetch.on_retry = [&](const std::string& why, int attempt, std::chrono::milliseconds pause) {
        progress.clear();
        out::info(fmt::format("Transfer interrupted ({}); retrying in {:.0f} s (attempt {} of {})", why,
                              std::chrono::duration<double>(pause).count(), attempt, req.fetch.attempts));
    };

    const std::string step_checks = "Executing prechecks for image download";
    image::Prechecks checks = with_context(step_checks, [&] { return image::precheck(req); });
    out::ok(step_checks);
    out::info("URL: " + c.image.url);
    if (checks.source == image::ChecksumSource::none)
        out::info(fmt::format("The image cannot be verified: {}", checks.no_checksum_why));

    if (checks.up_to_date) {
        if (checks.record_current && !dry)
            with_context(fmt::format("record image {}", c.image.file_name),
                         [&] { image::record_current(checks); });
        out::ok(fmt::format("Image {} in {} is already up to date ({})", c.image.file_name,
                            c.paths.local_store.string(), checks.up_to_date_why));
        return Exit::ok;
    }

    auto size_text = [](std::optional<std::uint64_t> s) { return s ? image::mebibytes(*s) : std::string("unknown"); };
    if (dry) {
        out::plan(fmt::format("download image {} (size {}) to {} (free space {}){}", c.image.file_name,
                              size_text(checks.remote.size), c.paths.local_store.string(),
                              image::mebibytes(checks.free_bytes),
                              checks.resume_from ? fmt::format(", resuming at {}", image::mebibytes(checks.resume_from))
                                                 : std::string()));
        return Exit::ok;
    }
    if (checks.resume_from > 0)
        out::info(fmt::format("Resuming the download of {} at {} of {}", c.image.file_name,
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
    image::PullResult r = with_context(fmt::format("Downloading image {}", c.image.file_name), [&] {
        try {
            return image::pull(checks, events);
        } catch (...) {
            progress.finish();
            throw;
        }
    });
    progress.finish();

    out::ok(fmt::format("Downloading image {} (size {}) to {} (free space {})", c.image.file_name,
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
    return Exit::ok;
}

}  // namespace aplspawn::cli
