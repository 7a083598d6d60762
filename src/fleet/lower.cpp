#include "aplspawn/fleet/lower.hpp"

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace aplspawn::fleet {
namespace {

using json = nlohmann::ordered_json;

// The store's current version of the image, open; nullopt when there is none.
std::optional<std::pair<sys::UniqueFd, ImageFile>> open_image(const config::Config& c,
                                                              const config::Image& im) {
    fs::path p = image_path(c, im);
    std::error_code ec;
    fs::path resolved = fs::canonical(p, ec);  // the store's symlink, resolved once
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return std::nullopt;
        throw Error::from_errno(fmt::format("resolve image {}", p.string()), ec.value());
    }
    sys::UniqueFd fd(::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;  // replaced between resolve and open
        throw_errno(fmt::format("open image {}", resolved.string()));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat image {}", resolved.string()));
    if (!S_ISREG(st.st_mode)) throw Error(fmt::format("image {} is not a regular file", resolved.string()));
    ImageFile f{resolved, st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size)};
    return std::pair{std::move(fd), f};
}

Error missing_image(const config::Config& c, const config::Image& im) {
    return Error(fmt::format("image {} is not in the local store: run aplspawn getimage first",
                             image_path(c, im).string()));
}

void write_record(const StateDir& state, const config::Image& im, const LowerResult& r,
                  const ImageFile& f) {
    json j = {{"image", im.name},
              {"file", f.path.string()},
              {"dev", static_cast<std::uint64_t>(f.dev)},
              {"inode", static_cast<std::uint64_t>(f.ino)},
              {"loop_device", r.loop_device},
              {"offset", r.partition.offset},
              {"size", r.partition.size},
              {"fstype", r.partition.fstype},
              {"partition", r.partition.how},
              {"mount_point", r.mount_point.string()}};
    fs::path p = lower_record_path(state, im.name);
    sys::ensure_dir(p.parent_path(), 0700);
    sys::write_file_atomic(p, j.dump(2) + "\n", 0644);
}

// Unmounts every stacked image mount at the lower directory.
Change unmount_all(const fs::path& mp) {
    Change changed = Change::unchanged;
    for (int i = 0; i < 16; ++i) {
        if (!sys::find_mount(sys::read_mountinfo(), mp)) return changed;
        changed |= sys::unmount(mp);
    }
    throw Error(fmt::format("unmount {}: still mounted after 16 unmounts", mp.string()));
}

}  // namespace

Error missing_snapshot(const config::Config& c, const config::Image& im) {
    std::string key = "image.snapshot";
    for (const auto& g : c.groups)
        if (g->image.file_name == im.file_name) {
            key = g->origin("image.snapshot");
            break;
        }
    return Error::usage(fmt::format("{}: there is no snapshot '{}' in the store {} (aplspawn "
                                    "snapshot CONTAINER {} makes it; aplspawn images lists the store)",
                                    c.where(key), im.snapshot, c.paths.local_store.string(),
                                    im.snapshot));
}

fs::path lower_dir(const config::Config& c, std::string_view image_name) {
    return sys::canonical_for_mountinfo(c.paths.lower / image_name);
}

fs::path image_path(const config::Config& c, const config::Image& im) {
    return c.paths.local_store / im.file_name;
}

fs::path lower_record_path(const StateDir& state, std::string_view image_name) {
    return state.dir() / "lower" / (std::string(image_name) + ".json");
}

std::vector<std::string> recorded_lowers(const StateDir& state) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state.dir() / "lower", ec)) {
        const auto& p = e.path();
        if (p.extension() != ".json" || p.stem().string().starts_with(".")) continue;
        names.push_back(p.stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<ImageFile> current_image(const config::Config& c, const config::Image& im) {
    auto img = open_image(c, im);
    if (!img) return std::nullopt;
    return img->second;
}

bool LowerStatus::shows(const ImageFile& f, const image::RootPartition& p) const {
    return is_image_mount() && loop->backing_device == f.dev && loop->backing_inode == f.ino &&
           loop->offset == p.offset && loop->size_limit == p.size && fstype == p.mount_type();
}

LowerStatus inspect_lower(const config::Config& c, std::string_view image_name) {
    LowerStatus s;
    s.mount_point = lower_dir(c, image_name);
    auto m = sys::find_mount(sys::read_mountinfo(), s.mount_point);
    if (!m) return s;
    s.mounted = true;
    s.source = m->source;
    s.fstype = m->fstype;
    s.read_only = m->read_only();
    if (m->major == sys::kLoopMajor && s.source.starts_with("/dev/loop"))
        s.loop = sys::loop_status(s.source);
    return s;
}

LowerPlan plan_lower(const config::Config& c, const config::Image& im, bool in_use) {
    LowerPlan plan;
    plan.image = im;
    plan.now = inspect_lower(c, im.name);
    const LowerStatus& now = plan.now;
    if (now.mounted && !now.is_image_mount())
        throw Error(fmt::format("{} has {} {} mounted, which is not an image's root partition: "
                                "unmount it or change path.imageLowerLayer",
                                now.mount_point.string(), now.fstype, now.source));
    auto img = open_image(c, im);
    if (!img) {
        if (now.is_image_mount() && in_use) {
            plan.notes.push_back(fmt::format("{} is gone from the store; the running containers "
                                             "keep the version they use",
                                             image_path(c, im).string()));
            return plan;
        }
        if (im.from_store()) throw missing_snapshot(c, im);
        throw missing_image(c, im);
    }
    plan.fd = std::move(img->first);
    plan.file = img->second;
    plan.partition = image::find_root_partition(plan.fd.get(), plan.file->path.string());
    if (!now.mounted) {
        plan.action = LowerPlan::Action::mount;
    } else if (now.shows(*plan.file, plan.partition)) {
        plan.action = LowerPlan::Action::keep;
    } else if (in_use) {
        plan.notes.push_back(fmt::format("{} shows an older version of {} that running containers "
                                         "use; the new version is used once they are stopped",
                                         now.mount_point.string(), im.file_name));
    } else {
        plan.action = LowerPlan::Action::replace;
    }
    return plan;
}

std::string LowerPlan::describe() const {
    if (action == Action::keep) return "";
    std::string attach = fmt::format(
        "attach {} ({}, {}, {} bytes at offset {}) read-only to a free loop device and mount it "
        "read-only at {}",
        file->path.string(), partition.how, partition.fstype, partition.size, partition.offset,
        now.mount_point.string());
    if (action == Action::mount) return attach;
    return fmt::format("unmount {} (an older version of the image) and {}", now.mount_point.string(),
                       attach);
}

LowerResult apply_lower(const StateDir& state, LowerPlan plan) {
    LowerResult r;
    r.mount_point = plan.now.mount_point;
    r.notes = std::move(plan.notes);
    r.partition = plan.partition;
    return with_context(fmt::format("mount lower layer {}", r.mount_point.string()), [&] {
        if (plan.action == LowerPlan::Action::keep) {
            if (plan.now.loop) r.loop_device = plan.now.loop->device;
            if (plan.file && plan.now.shows(*plan.file, plan.partition) &&
                !fs::exists(lower_record_path(state, plan.image.name)))
                write_record(state, plan.image, r, *plan.file);
            return r;
        }
        if (plan.action == LowerPlan::Action::replace) {
            unmount_all(r.mount_point);
            r.notes.push_back(fmt::format("replaced the lower layer of an older version of {}",
                                          plan.image.file_name));
        }
        sys::LoopDevice loop = sys::LoopDevice::attach(
            plan.fd.get(), sys::LoopOptions{plan.partition.offset, plan.partition.size, true, true},
            plan.file->path.string());
        sys::ensure_dir(r.mount_point, 0755);
        sys::mount(loop.path(), r.mount_point, plan.partition.mount_type(), MS_RDONLY,
                   plan.partition.mount_data());
        r.loop_device = loop.path();
        r.change = Change::changed;
        write_record(state, plan.image, r, *plan.file);
        return r;  // `loop` closes here: the mount holds the device; unmount releases it
    });
}

LowerResult ensure_lower(const config::Config& c, const config::Image& im, const StateDir& state,
                         bool in_use) {
    return apply_lower(state, plan_lower(c, im, in_use));
}

Change release_lower(const config::Config& c, std::string_view image_name, const StateDir& state) {
    LowerStatus now = inspect_lower(c, image_name);
    Change changed = Change::unchanged;
    if (now.is_image_mount())
        changed = with_context(fmt::format("unmount lower layer {}", now.mount_point.string()),
                               [&] { return unmount_all(now.mount_point); });
    std::error_code ec;
    fs::remove(lower_record_path(state, image_name), ec);
    return changed;
}

}  // namespace aplspawn::fleet
