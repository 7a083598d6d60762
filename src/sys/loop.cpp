#include "aplspawn/sys/loop.hpp"

#include "aplspawn/error.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace aplspawn::sys {
namespace {

// loop_info64.lo_device is the kernel's "huge" (new_encode_dev) encoding.
dev_t decode_kernel_dev(std::uint64_t d) {
    unsigned major = static_cast<unsigned>((d & 0xfff00u) >> 8);
    unsigned minor = static_cast<unsigned>((d & 0xffu) | ((d >> 12) & 0xfff00u));
    return makedev(major, minor);
}

loop_info64 make_info(const LoopOptions& o, const std::string& what) {
    loop_info64 info{};
    info.lo_offset = o.offset;
    info.lo_sizelimit = o.size_limit;
    std::uint32_t flags = 0;
    if (o.read_only) flags |= LO_FLAGS_READ_ONLY;
    if (o.autoclear) flags |= LO_FLAGS_AUTOCLEAR;
    info.lo_flags = flags;
    // Shown by losetup; the kernel keeps at most LO_NAME_SIZE - 1 bytes.
    std::size_t n = std::min(what.size(), sizeof info.lo_file_name - 1);
    std::memcpy(info.lo_file_name, what.data(), n);
    return info;
}

// Kernels before 5.8 have no LOOP_CONFIGURE: bind, then set the status (not atomic, but the
// device is ours until someone else opens it and we hold it open).
int configure_legacy(int loop_fd, int backing_fd, const loop_info64& info) {
    if (::ioctl(loop_fd, LOOP_SET_FD, backing_fd) < 0) return -1;
    loop_info64 copy = info;
    copy.lo_flags &= ~static_cast<std::uint32_t>(LO_FLAGS_READ_ONLY);  // read-only came from the fd
    if (::ioctl(loop_fd, LOOP_SET_STATUS64, &copy) < 0) {
        int err = errno;
        ::ioctl(loop_fd, LOOP_CLR_FD, 0);
        errno = err;
        return -1;
    }
    return 0;
}

}  // namespace

LoopDevice LoopDevice::attach(int backing_fd, const LoopOptions& options, const std::string& what) {
    const std::string context = fmt::format("attach loop device for {}", what);
    UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control) throw_errno(context + ": open /dev/loop-control");
    loop_info64 info = make_info(options, what);
    // Another process may take the device LOOP_CTL_GET_FREE named before we bind it: try again.
    for (int attempt = 0; attempt < 32; ++attempt) {
        int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (n < 0) throw_errno(context + ": LOOP_CTL_GET_FREE");
        std::string path = fmt::format("/dev/loop{}", n);
        UniqueFd dev(::open(path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
        if (!dev) {
            if (errno == ENOENT || errno == ENXIO) continue;  // node not there yet / just removed
            throw_errno(fmt::format("{}: open {}", context, path));
        }
        loop_config cfg{};
        cfg.fd = static_cast<std::uint32_t>(backing_fd);
        cfg.info = info;
        int rc = ::ioctl(dev.get(), LOOP_CONFIGURE, &cfg);
        if (rc < 0 && (errno == EINVAL || errno == ENOTTY)) {
            // LOOP_CONFIGURE unknown (EINVAL on old kernels): fall back.
            rc = configure_legacy(dev.get(), backing_fd, info);
        }
        if (rc == 0) return LoopDevice(path, std::move(dev));
        if (errno == EBUSY) continue;  // raced with another process
        throw_errno(fmt::format("{}: configure {}", context, path));
    }
    throw Error::from_errno(context + ": every free loop device was taken by someone else", EBUSY);
}

void LoopDevice::detach() {
    if (!fd_) return;
    if (::ioctl(fd_.get(), LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
        throw_errno(fmt::format("detach {}", path_));
    fd_.reset();
}

std::optional<LoopStatus> loop_status(const fs::path& device) {
    UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT || errno == ENXIO || errno == ENODEV) return std::nullopt;
        throw_errno(fmt::format("open {}", device.string()));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat {}", device.string()));
    if (!S_ISBLK(st.st_mode) || major(st.st_rdev) != kLoopMajor) return std::nullopt;
    loop_info64 info{};
    if (::ioctl(fd.get(), LOOP_GET_STATUS64, &info) < 0) {
        if (errno == ENXIO) return std::nullopt;  // not bound
        throw_errno(fmt::format("LOOP_GET_STATUS64 {}", device.string()));
    }
    LoopStatus s;
    s.device = device.string();
    s.backing_device = decode_kernel_dev(info.lo_device);
    s.backing_inode = static_cast<ino_t>(info.lo_inode);
    s.offset = info.lo_offset;
    s.size_limit = info.lo_sizelimit;
    s.read_only = (info.lo_flags & LO_FLAGS_READ_ONLY) != 0;
    s.autoclear = (info.lo_flags & LO_FLAGS_AUTOCLEAR) != 0;
    s.file_name = std::string(reinterpret_cast<const char*>(info.lo_file_name),
                              strnlen(reinterpret_cast<const char*>(info.lo_file_name),
                                      sizeof info.lo_file_name));
    return s;
}

}  // namespace aplspawn::sys
