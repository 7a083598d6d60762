#include "aplspawn/health/storage.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/loop.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace aplspawn::health {
namespace {

namespace fs = std::filesystem;

CheckResult directories_check(const config::Config& c) {
    CheckResult r{"", "directories", "Checking if working directories exist", true, ""};
    std::vector<std::pair<std::string, const fs::path*>> dirs = {
        {"path.workingDirectory", &c.paths.working_dir}, {"path.localStore", &c.paths.local_store},
        {"path.imageLowerLayer", &c.paths.lower},        {"path.imageUpperPath", &c.paths.upper},
        {"path.imageWorkPath", &c.paths.work},           {"path.stateDirectory", &c.paths.state},
    };
    for (const auto& g : c.groups)
        if (std::none_of(dirs.begin(), dirs.end(),
                         [&](const auto& d) { return *d.second == g->common.home_path; }))
            dirs.push_back({g->origin("homePath"), &g->common.home_path});
    std::vector<std::string> missing;
    for (const auto& [key, path] : dirs) {
        struct stat st;
        if (::stat(path->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        int err = errno;
        missing.push_back(fmt::format("{} {} ({})", key, path->string(),
                                      ::stat(path->c_str(), &st) == 0 ? "not a directory"
                                                                       : std::strerror(err)));
    }
    if (!missing.empty()) {
        r.ok = false;
        r.detail = fmt::format("{}", fmt::join(missing, "; "));
    }
    return r;
}

// What a loop device must show: one file's byte range.
struct Expected {
    std::string what;  // "the store's current image FILE" / "the attached version FILE"
    std::uint64_t dev = 0, ino = 0, offset = 0, size = 0;
    bool matches(const sys::LoopStatus& s) const {
        return s.backing_device == dev && s.backing_inode == ino && s.offset == offset &&
               s.size_limit == size;
    }
};

// The version spawn attached, from state/lower/IMAGE.json.
std::optional<Expected> recorded(const config::Config& c, const config::Image& im) {
    fleet::StateDir state(c);
    auto text = sys::read_file_if_exists(fleet::lower_record_path(state, im.name));
    if (!text) return std::nullopt;
    try {
        auto j = nlohmann::json::parse(*text);
        return Expected{fmt::format("the attached version {}", j.at("file").get<std::string>()),
                        j.at("dev").get<std::uint64_t>(), j.at("inode").get<std::uint64_t>(),
                        j.at("offset").get<std::uint64_t>(), j.at("size").get<std::uint64_t>()};
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

std::optional<Expected> current(const config::Config& c, const config::Image& im) {
    auto f = fleet::current_image(c, im);
    if (!f) return std::nullopt;
    auto p = image::find_root_partition(f->path);
    return Expected{fmt::format("the store's image {}", f->path.string()), f->dev, f->ino, p.offset,
                    p.size};
}

// Bound loop devices: /sys/block/loopN/loop exists only while loopN is bound.
std::vector<std::string> bound_loop_devices() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
        std::string name = e.path().filename().string();
        if (!name.starts_with("loop")) continue;
        if (fs::exists(e.path() / "loop", ec)) out.push_back("/dev/" + name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The two checks of one image: its loop device, and the device mounted at its lower directory.
// `named`: the fleet has several images, so the titles say which.
void image_checks(const config::Config& c, const config::Image& im, bool named,
                  const std::vector<sys::MountInfo>& mounts, Report& report) {
    const fs::path lower = fleet::lower_dir(c, im.name);
    auto mount = sys::find_mount(mounts, lower);

    CheckResult loop{"", "image.loop",
                     named ? fmt::format("Checking if image {} is mounted correctly to loop device",
                                         im.name)
                           : std::string("Checking if image is mounted correctly to loop device"),
                     false, ""};
    std::string device;  // the image's loop device, once found
    try {
        std::vector<Expected> wanted;
        if (auto cur = current(c, im)) wanted.push_back(*cur);
        if (auto rec = recorded(c, im)) wanted.push_back(*rec);
        if (wanted.empty())
            throw Error(fmt::format("no image: {} is not in the local store (aplspawn getimage) "
                                    "and no attached version is recorded",
                                    fleet::image_path(c, im).string()));
        // The device mounted at the lower directory first, then every bound loop device.
        std::vector<std::string> candidates;
        if (mount && mount->source.starts_with("/dev/loop")) candidates.push_back(mount->source);
        for (auto& d : bound_loop_devices())
            if (std::find(candidates.begin(), candidates.end(), d) == candidates.end())
                candidates.push_back(d);
        std::string near_miss;
        for (const auto& dev : candidates) {
            auto st = sys::loop_status(dev);
            if (!st) continue;
            for (std::size_t i = 0; i < wanted.size(); ++i) {
                const Expected& w = wanted[i];
                if (st->backing_device != w.dev || st->backing_inode != w.ino) continue;
                if (!w.matches(*st)) {
                    near_miss = fmt::format("{} is bound to {} at offset {} ({} bytes), not its "
                                            "root partition (offset {}, {} bytes)",
                                            dev, w.what, st->offset, st->size_limit, w.offset, w.size);
                    continue;
                }
                if (!st->read_only) {
                    near_miss = fmt::format("{} is bound to {} read-write, not read-only", dev, w.what);
                    continue;
                }
                device = dev;
                loop.ok = true;
                loop.detail = fmt::format("{}: {} bytes at offset {}, read-only{}", w.what, w.size,
                                          w.offset,
                                          i > 0 && wanted.size() > 1
                                              ? " (an older version than the store's: the running "
                                                "fleet keeps it until it is stopped)"
                                              : "");
                break;
            }
            if (loop.ok) break;
        }
        if (!loop.ok)
            loop.detail = !near_miss.empty()
                              ? near_miss
                              : fmt::format("{} is not bound to any loop device (aplspawn spawn "
                                            "attaches it)",
                                            im.file_name);
    } catch (const Error& e) {
        loop.detail = e.message();
    }
    if (!device.empty()) loop.title += " " + device;
    report.push_back(loop);

    std::string shown = !device.empty() ? device : mount ? mount->source : std::string();
    CheckResult low{"", "image.lower",
                    fmt::format("Checking if loop {}(image root) is mounted to lower {}",
                                shown.empty() ? "" : shown + " ", lower.string()),
                    false, ""};
    if (!mount)
        low.detail = fmt::format("nothing is mounted at {}", lower.string());
    else if (device.empty())
        low.detail = fmt::format("{} {} is mounted there, not the image's loop device", mount->fstype,
                                 mount->source);
    else if (mount->source != device)
        low.detail = fmt::format("{} {} is mounted there, not {}", mount->fstype, mount->source, device);
    else if (!mount->read_only())
        low.detail = fmt::format("{} is mounted read-write; the shared lower layer must be read-only",
                                 device);
    else {
        low.ok = true;
        low.detail = fmt::format("{} {}, read-only", mount->fstype, device);
    }
    report.push_back(low);
}

}  // namespace

Report storage_checks(const config::Config& c, const std::vector<sys::MountInfo>& mounts,
                      const std::vector<const config::Image*>& images) {
    Report report;
    report.push_back(directories_check(c));
    for (const auto* im : images) image_checks(c, *im, images.size() > 1, mounts, report);
    return report;
}

}  // namespace aplspawn::health
