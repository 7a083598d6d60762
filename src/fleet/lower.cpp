#include "aplspawn/fleet/lower.hpp"

#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace aplspawn::fleet {
namespace {

using json = nlohmann::ordered_json;

struct OpenImage {
    sys::UniqueFd fd;
    ImageFile file;
};

std::optional<OpenImage> open_image(const config::Config& c) {
    fs::path p = image_path(c);
    std::error_code ec;
    fs::path resolved = fs::canonical(p, ec);  // the store's symlink, resolved once
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return std::nullopt;
        throw Error::from_errno(fmt::format("resolve image {}", p.string()), ec.value());
    }
    OpenImage img;
    img.fd.reset(::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!img.fd) {
        if (errno == ENOENT) return std::nullopt;  // replaced between resolve and open
        throw_errno(fmt::format("open image {}", resolved.string()));
    }
    struct stat st;
    if (::fstat(img.fd.get(), &st) < 0) throw_errno(fmt::format("stat image {}", resolved.string()));
    if (!S_ISREG(st.st_mode)) throw Error(fmt::format("image {} is not a regular file", resolved.string()));
    img.file = {resolved, st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size)};
    return img;
}

Error missing_image(const config::Config& c) {
    return Error(fmt::format("image {} is not in the local store: run aplspawn getimage first",
                             image_path(c).string()));
}

void write_record(const config::Config& c, const StateDir& state, const LowerResult& r,
                  const ImageFile& f) {
    json j = {{"image", c.image.name},
              {"file", f.path.string()},
              {"dev", static_cast<std::uint64_t>(f.dev)},
              {"inode", static_cast<std::uint64_t>(f.ino)},
              {"loop_device", r.loop_device},
              {"offset", r.partition.offset},
              {"size", r.partition.size},
              {"fstype", r.partition.fstype},
              {"partition", r.partition.how},
              {"mount_point", r.mount_point.string()}};
    fs::path p = lower_record_path(c, state);
    sys::ensure_dir(p.parent_path(), 0755);
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

fs::path lower_dir(const config::Config& c) {
    return sys::canonical_for_mountinfo(c.paths.lower / c.image.name);
}

fs::path image_path(const config::Config& c) { return c.paths.local_store / c.image.file_name; }

fs::path lower_record_path(const config::Config& c, const StateDir& state) {
    return state.dir() / "lower" / (c.image.name + ".json");
}

std::optional<ImageFile> current_image(const config::Config& c) {
    auto img = open_image(c);
    if (!img) return std::nullopt;
    return img->file;
}

bool LowerStatus::shows(const ImageFile& f, const image::RootPartition& p) const {
    return is_image_mount() && loop->backing_device == f.dev && loop->backing_inode == f.ino &&
           loop->offset == p.offset && loop->size_limit == p.size && fstype == p.mount_type();
}

LowerStatus inspect_lower(const config::Config& c) {
    LowerStatus s;
    s.mount_point = lower_dir(c);
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

std::string plan_lower(const config::Config& c, bool in_use) {
    LowerStatus now = inspect_lower(c);
    auto img = open_image(c);
    if (!img) {
        if (now.is_image_mount() && in_use) return "";
        throw missing_image(c);
    }
    auto part = image::find_root_partition(img->fd.get(), img->file.path.string());
    std::string attach = fmt::format(
        "attach {} ({}, {}, {} bytes at offset {}) read-only to a free loop device and mount it "
        "read-only at {}",
        img->file.path.string(), part.how, part.fstype, part.size, part.offset,
        now.mount_point.string());
    if (!now.mounted) return attach;
    if (!now.is_image_mount())
        throw Error(fmt::format("{} has {} {} mounted, which is not an image's root partition: "
                                "unmount it or change path.imageLowerLayer",
                                now.mount_point.string(), now.fstype, now.source));
    if (now.shows(img->file, part) || in_use) return "";
    return fmt::format("unmount {} (an older version of the image) and {}", now.mount_point.string(),
                       attach);
}

LowerResult ensure_lower(const config::Config& c, const StateDir& state, bool in_use) {
    LowerResult r;
    r.mount_point = lower_dir(c);
    return with_context(fmt::format("mount lower layer {}", r.mount_point.string()), [&] {
        LowerStatus now = inspect_lower(c);
        auto img = open_image(c);
        if (now.mounted && !now.is_image_mount())
            throw Error(fmt::format("{} {} is mounted there, not an image's root partition: "
                                    "unmount it or change path.imageLowerLayer",
                                    now.fstype, now.source));
        if (!img) {
            if (now.is_image_mount() && in_use) {
                r.loop_device = now.loop->device;
                r.notes.push_back(fmt::format("{} is gone from the store; the running containers "
                                              "keep the version they use",
                                              image_path(c).string()));
                return r;
            }
            throw missing_image(c);
        }
        r.partition = image::find_root_partition(img->fd.get(), img->file.path.string());
        if (now.is_image_mount()) {
            if (now.shows(img->file, r.partition)) {
                r.loop_device = now.loop->device;
                if (!fs::exists(lower_record_path(c, state))) write_record(c, state, r, img->file);
                return r;
            }
            if (in_use) {
                r.loop_device = now.loop->device;
                r.notes.push_back(fmt::format(
                    "{} shows an older version of {} that running containers use; the new "
                    "version is used once the fleet is stopped",
                    r.mount_point.string(), c.image.file_name));
                return r;
            }
            unmount_all(r.mount_point);  // an older version nobody uses: replace it
            r.notes.push_back(fmt::format("replaced the lower layer of an older version of {}",
                                          c.image.file_name));
        }
        sys::LoopDevice loop = sys::LoopDevice::attach(
            img->fd.get(),
            sys::LoopOptions{r.partition.offset, r.partition.size, true, true},
            img->file.path.string());
        sys::ensure_dir(r.mount_point, 0755);
        sys::mount(loop.path(), r.mount_point, r.partition.mount_type(), MS_RDONLY,
                   r.partition.mount_data());
        r.loop_device = loop.path();
        r.change = Change::changed;
        write_record(c, state, r, img->file);
        return r;  // `loop` closes here: the mount holds the device; unmount releases it
    });
}

Change release_lower(const config::Config& c, const StateDir& state) {
    LowerStatus now = inspect_lower(c);
    Change changed = Change::unchanged;
    if (now.is_image_mount())
        changed = with_context(fmt::format("unmount lower layer {}", now.mount_point.string()),
                               [&] { return unmount_all(now.mount_point); });
    std::error_code ec;
    fs::remove(lower_record_path(c, state), ec);
    return changed;
}

}  // namespace aplspawn::fleet
