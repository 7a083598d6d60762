// An exclusive lock on a directory (flock on DIR/lock), held for the life of the object. The
// holder's pid and operation are written in the file so a second run can say who holds it.
#pragma once

#include "aplspawn/sys/fd.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace aplspawn::sys {

class DirLock {
public:
    // Who holds the lock of dir now ("aplspawn spawn (pid 123)"), without taking it: from
    // /proc/locks (a held flock on DIR/lock's inode) and what the holder wrote in the file.
    // nullopt when nobody holds it.
    static std::optional<std::string> holder(const std::filesystem::path& dir);

    // Takes the lock or throws Error "fleet state DIR is in use by aplspawn spawn (pid N)".
    // When pid N no longer exists (killed), waits up to 10 s for the lock first: a child it
    // forked holds it until that child execs. The directory is created (0700) if missing.
    static DirLock acquire(const std::filesystem::path& dir, std::string_view operation);

    DirLock(DirLock&&) = default;
    DirLock& operator=(DirLock&&) = default;
    ~DirLock() = default;  // closing the fd drops the lock

private:
    explicit DirLock(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace aplspawn::sys
