// Loop devices: a free one from /dev/loop-control, bound read-only to a byte range of a file with
// one LOOP_CONFIGURE (offset, size limit, autoclear), never a fixed /dev/loopN. With autoclear the
// kernel releases the device at its last close, which is the unmount when it is mounted: nothing
// to detach by hand, and nothing leaks when the process (or the test's namespace) dies.
#pragma once

#include "aplspawn/sys/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace aplspawn::sys {

namespace fs = std::filesystem;

struct LoopOptions {
    std::uint64_t offset = 0;
    std::uint64_t size_limit = 0;  // 0: to the end of the file
    bool read_only = true;
    bool autoclear = true;
};

// What a bound loop device is attached to (LOOP_GET_STATUS64).
struct LoopStatus {
    std::string device;           // "/dev/loop3"
    dev_t backing_device = 0;     // st_dev of the backing file
    ino_t backing_inode = 0;      // st_ino of the backing file
    std::uint64_t offset = 0;
    std::uint64_t size_limit = 0;
    bool read_only = false;
    bool autoclear = false;
    std::string file_name;        // as recorded at attach time (may be truncated by the kernel)
};

class LoopDevice {
public:
    // Binds a free loop device to backing_fd. Retries when another process takes the free device
    // first. Throws Error "attach loop device for WHAT: strerror".
    static LoopDevice attach(int backing_fd, const LoopOptions& options, const std::string& what);

    LoopDevice() = default;
    LoopDevice(LoopDevice&&) = default;
    LoopDevice& operator=(LoopDevice&&) = default;
    ~LoopDevice() = default;  // closing the fd releases an autoclear device that nothing mounted

    const std::string& path() const { return path_; }
    int fd() const { return fd_.get(); }
    // Unbinds now (LOOP_CLR_FD); with autoclear set and a mount on it, the kernel defers this
    // to the unmount.
    void detach();

private:
    LoopDevice(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
    std::string path_;
    UniqueFd fd_;
};

// Status of /dev/loopN; nullopt when the device is not bound (or is not a loop device).
std::optional<LoopStatus> loop_status(const fs::path& device);

// The block device major number of loop devices (Documentation/admin-guide/devices.txt).
inline constexpr unsigned kLoopMajor = 7;

}  // namespace aplspawn::sys
