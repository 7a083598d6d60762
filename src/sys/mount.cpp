#include "aplspawn/sys/mount.hpp"

#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include <thread>

namespace aplspawn::sys {
namespace {

bool is_octal(char c) { return c >= '0' && c <= '7'; }

// Splits at single spaces (mountinfo fields never contain unescaped spaces).
std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> out;
    while (!line.empty()) {
        auto sp = line.find(' ');
        out.push_back(line.substr(0, sp));
        if (sp == std::string_view::npos) break;
        line.remove_prefix(sp + 1);
    }
    return out;
}

bool parse_int(std::string_view s, int& v) {
    if (s.empty()) return false;
    int r = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        r = r * 10 + (c - '0');
    }
    v = r;
    return true;
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

std::string unescape_octal(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && is_octal(s[i + 1]) && is_octal(s[i + 2]) && is_octal(s[i + 3])) {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> split_super_options(std::string_view options) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!options.empty()) {
        auto c = options.find(',');
        std::string_view item = options.substr(0, c);
        auto eq = item.find('=');
        if (eq == std::string_view::npos)
            out.emplace_back(unescape_octal(item), "");
        else
            out.emplace_back(unescape_octal(item.substr(0, eq)), unescape_octal(item.substr(eq + 1)));
        if (c == std::string_view::npos) break;
        options.remove_prefix(c + 1);
    }
    return out;
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
    std::vector<MountInfo> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        // id parent major:minor root mount_point options [optional...] - fstype source super
        auto f = split_fields(line);
        if (f.size() < 10) continue;
        MountInfo m;
        if (!parse_int(f[0], m.id) || !parse_int(f[1], m.parent_id)) continue;
        auto colon = f[2].find(':');
        int maj = 0, min = 0;
        if (colon == std::string_view::npos || !parse_int(f[2].substr(0, colon), maj) ||
            !parse_int(f[2].substr(colon + 1), min))
            continue;
        m.major = static_cast<unsigned>(maj);
        m.minor = static_cast<unsigned>(min);
        m.root = unescape_octal(f[3]);
        m.mount_point = unescape_octal(f[4]);
        m.mount_options = std::string(f[5]);
        size_t sep = 6;
        while (sep < f.size() && f[sep] != "-") ++sep;
        if (sep + 3 > f.size()) continue;
        m.fstype = unescape_octal(f[sep + 1]);
        m.source = unescape_octal(f[sep + 2]);
        if (sep + 3 < f.size()) m.super_options = std::string(f[sep + 3]);
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<MountInfo> read_mountinfo() { return parse_mountinfo(read_file("/proc/self/mountinfo")); }

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
