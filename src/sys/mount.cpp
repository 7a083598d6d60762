#include "aplspawn/sys/mount.hpp"

#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fs.hpp"

#include <dirent.h>
#include <libmount/libmount.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include <thread>

namespace aplspawn::sys {
namespace {

struct TableUnref {
    void operator()(libmnt_table* t) const { mnt_unref_table(t); }
};
struct IterFree {
    void operator()(libmnt_iter* i) const { mnt_free_iter(i); }
};
struct FileClose {
    void operator()(FILE* f) const { std::fclose(f); }
};
using Table = std::unique_ptr<libmnt_table, TableUnref>;

std::string text_of(const char* s) { return s ? std::string(s) : std::string(); }

Table new_table() {
    Table t(mnt_new_table());
    if (!t) throw Error("libmount: cannot create a mount table (out of memory?)");
    return t;
}

std::vector<MountInfo> entries(libmnt_table* table) {
    std::unique_ptr<libmnt_iter, IterFree> it(mnt_new_iter(MNT_ITER_FORWARD));
    if (!it) throw Error("libmount: cannot create an iterator (out of memory?)");
    std::vector<MountInfo> out;
    libmnt_fs* f = nullptr;
    while (mnt_table_next_fs(table, it.get(), &f) == 0) {
        MountInfo m;
        m.id = mnt_fs_get_id(f);
        m.parent_id = mnt_fs_get_parent_id(f);
        dev_t dev = mnt_fs_get_devno(f);
        m.major = ::major(dev);
        m.minor = ::minor(dev);
        m.root = text_of(mnt_fs_get_root(f));
        m.mount_point = text_of(mnt_fs_get_target(f));
        m.mount_options = text_of(mnt_fs_get_vfs_options(f));
        m.fstype = text_of(mnt_fs_get_fstype(f));
        m.source = text_of(mnt_fs_get_source(f));
        m.super_options = text_of(mnt_fs_get_fs_options(f));
        out.push_back(std::move(m));
    }
    return out;
}

}  // namespace

bool MountInfo::read_only() const {
    std::string_view o(mount_options);
    while (!o.empty()) {
        auto c = o.find(',');
        if (o.substr(0, c) == "ro") return true;
        if (c == std::string_view::npos) break;
        o.remove_prefix(c + 1);
    }
    return false;
}

bool MountInfo::has_super_option(std::string_view item) const {
    std::string hay = "," + super_options + ",";
    std::string needle = fmt::format(",{},", item);
    return hay.find(needle) != std::string::npos;
}

std::optional<std::string> MountInfo::super_option(std::string_view key) const {
    std::string hay = "," + super_options;
    std::string needle = fmt::format(",{}=", key);
    auto at = hay.find(needle);
    if (at == std::string::npos) return std::nullopt;
    auto from = at + needle.size();
    return hay.substr(from, hay.find(',', from) - from);
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
    if (text.empty()) return {};
    std::string copy(text);
    std::unique_ptr<FILE, FileClose> f(::fmemopen(copy.data(), copy.size(), "r"));
    if (!f) throw_errno("libmount: open mountinfo text");
    Table t = new_table();
    if (int r = mnt_table_parse_stream(t.get(), f.get(), "mountinfo"); r < 0)
        throw Error::from_errno("libmount: parse mountinfo", -r);
    return entries(t.get());
}

std::vector<MountInfo> read_mountinfo() {
    Table t = new_table();
    if (int r = mnt_table_parse_file(t.get(), "/proc/self/mountinfo"); r < 0)
        throw Error::from_errno("read /proc/self/mountinfo (libmount)", -r);
    return entries(t.get());
}

std::vector<MountInfo> read_mountinfo_of(pid_t pid) {
    Table t = new_table();
    const std::string file = fmt::format("/proc/{}/mountinfo", pid);
    if (int r = mnt_table_parse_file(t.get(), file.c_str()); r < 0)
        throw Error::from_errno(fmt::format("read {} (libmount)", file), -r);
    return entries(t.get());
}

std::optional<MountInfo> find_mount(const std::vector<MountInfo>& mounts,
                                    const fs::path& mount_point) {
    std::optional<MountInfo> found;
    for (const auto& m : mounts)
        if (m.mount_point == mount_point.string()) found = m;
    return found;
}

int count_mounts(const std::vector<MountInfo>& mounts, const fs::path& mount_point) {
    int n = 0;
    for (const auto& m : mounts)
        if (m.mount_point == mount_point.string()) ++n;
    return n;
}

fs::path canonical_for_mountinfo(const fs::path& p) {
    std::error_code ec;
    fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
    if (ec) return fs::absolute(p).lexically_normal();
    std::string s = c.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

void mount(const std::string& source, const fs::path& target, const std::string& fstype,
           unsigned long flags, const std::string& data) {
    if (::mount(source.c_str(), target.c_str(), fstype.c_str(), flags,
                data.empty() ? nullptr : data.c_str()) < 0)
        throw_errno(fmt::format("mount {} {} on {}", fstype, source, target.string()));
}

Change unmount(const fs::path& target, int flags, std::chrono::milliseconds busy_wait) {
    auto deadline = std::chrono::steady_clock::now() + busy_wait;
    while (true) {
        if (::umount2(target.c_str(), flags | UMOUNT_NOFOLLOW) == 0) return Change::changed;
        int err = errno;
        if (err == EINVAL || err == ENOENT) return Change::unchanged;
        if (err == EBUSY && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        throw_errno(fmt::format("unmount {}", target.string()), err);
    }
}

UpperLayerSupport probe_upper_layer_support(const fs::path& dir) {
    UpperLayerSupport s;
    struct statfs sfs;
    if (::statfs(dir.c_str(), &sfs) < 0) throw_errno(fmt::format("statfs {}", dir.string()));
    s.is_overlayfs = sfs.f_type == OVERLAYFS_SUPER_MAGIC;

    std::string tmpl = (dir / ".aplspawn-probe.XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        throw_errno(fmt::format("create a probe directory in {}", dir.string()));
    fs::path probe = tmpl;
    fs::path file = probe / "f";
    {
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            int err = errno;
            ::rmdir(probe.c_str());
            throw_errno(fmt::format("create a probe file in {}", dir.string()), err);
        }
        ::close(fd);
    }
    if (Dir d = Dir::open(probe.c_str())) {
        while (dirent* e = d.next())
            if (std::strcmp(e->d_name, "f") == 0) s.d_type = e->d_type != DT_UNKNOWN;
    }
    if (!s.d_type) s.why_not = "directory entries carry no file type (d_type)";
    if (::setxattr(file.c_str(), "trusted.aplspawn.probe", "1", 1, 0) == 0) {
        s.trusted_xattrs = true;
    } else {
        s.why_not = fmt::format("trusted.* extended attributes: {}", std::strerror(errno));
    }
    ::unlink(file.c_str());
    ::rmdir(probe.c_str());
    if (s.is_overlayfs) s.why_not = "it is itself on overlayfs";
    return s;
}

MountGuard& MountGuard::operator=(MountGuard&& o) noexcept {
    if (this != &o) {
        reset();
        target_ = std::exchange(o.target_, {});
    }
    return *this;
}

MountGuard::~MountGuard() { reset(); }

void MountGuard::reset() noexcept {
    if (target_.empty()) return;
    if (::umount2(target_.c_str(), UMOUNT_NOFOLLOW) < 0 && errno == EBUSY)
        ::umount2(target_.c_str(), UMOUNT_NOFOLLOW | MNT_DETACH);
    target_.clear();
}

}  // namespace aplspawn::sys
