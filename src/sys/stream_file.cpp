#include "aplspawn/sys/stream_file.hpp"

#include "aplspawn/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <memory>

namespace aplspawn::sys {
namespace {

// Writeback is started every kWritebackStep bytes; the step before the last is waited for, so
// at most about two steps of dirty pages are in flight.
constexpr std::uint64_t kWritebackStep = 32ull << 20;

}  // namespace

OutputFile OutputFile::create(const fs::path& path, mode_t mode) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) throw_errno(fmt::format("create {}", path.string()));
    return OutputFile(path, std::move(fd), 0);
}

OutputFile OutputFile::append(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw_errno(fmt::format("open {}", path.string()));
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat {}", path.string()));
    if (!S_ISREG(st.st_mode))
        throw Error(fmt::format("open {}: not a regular file", path.string()));
    if (::lseek(fd.get(), 0, SEEK_END) < 0) throw_errno(fmt::format("seek {}", path.string()));
    return OutputFile(path, std::move(fd), static_cast<std::uint64_t>(st.st_size));
}

void OutputFile::write(std::span<const unsigned char> data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd_.get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(fmt::format("write {}", path_.string()));
        }
        data = data.subspan(static_cast<std::size_t>(n));
        size_ += static_cast<std::uint64_t>(n);
    }
    if (size_ - flushed_ >= kWritebackStep) start_writeback();
}

void OutputFile::start_writeback() {
    // Errors here are not fatal: fsync at the end reports any real write error.
    ::sync_file_range(fd_.get(), static_cast<off_t>(flushed_), static_cast<off_t>(size_ - flushed_),
                      SYNC_FILE_RANGE_WRITE);
    if (flushed_ > waited_) {
        ::sync_file_range(fd_.get(), static_cast<off_t>(waited_), static_cast<off_t>(flushed_ - waited_),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER);
        waited_ = flushed_;
    }
    flushed_ = size_;
}

void OutputFile::truncate(std::uint64_t size) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) < 0)
        throw_errno(fmt::format("truncate {}", path_.string()));
    if (::lseek(fd_.get(), static_cast<off_t>(size), SEEK_SET) < 0)
        throw_errno(fmt::format("seek {}", path_.string()));
    size_ = size;
    flushed_ = waited_ = std::min(waited_, size);
}

void OutputFile::sync() {
    if (::fsync(fd_.get()) < 0) throw_errno(fmt::format("fsync {}", path_.string()));
    flushed_ = waited_ = size_;
}

void OutputFile::close() {
    int fd = fd_.release();
    if (fd >= 0 && ::close(fd) < 0 && errno != EINTR)
        throw_errno(fmt::format("close {}", path_.string()));
}

void read_blocks(const fs::path& path, std::uint64_t length, std::size_t block_size,
                 const std::function<void(std::span<const unsigned char>)>& block) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno(fmt::format("open {}", path.string()));
    ::posix_fadvise(fd.get(), 0, static_cast<off_t>(length), POSIX_FADV_SEQUENTIAL);
    auto buf = std::make_unique_for_overwrite<unsigned char[]>(block_size);
    std::uint64_t done = 0;
    while (done < length) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, length - done));
        ssize_t n = ::read(fd.get(), buf.get(), want);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(fmt::format("read {}", path.string()));
        }
        if (n == 0)
            throw Error(fmt::format("read {}: file ends at {} bytes, expected {}", path.string(),
                                    done, length));
        block({buf.get(), static_cast<std::size_t>(n)});
        done += static_cast<std::uint64_t>(n);
    }
}

}  // namespace aplspawn::sys
