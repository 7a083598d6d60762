// Files written and read front to back in large blocks, as downloads do.
//
// OutputFile writes with plain write(2) and starts the kernel's writeback of what it wrote every
// few tens of MiB (sync_file_range), waiting for the range before: dirty memory stays bounded
// and the final fsync has little left to do. Errors (ENOSPC, EIO, EDQUOT) come back as Error
// with their errno, naming the file.
#pragma once

#include "aplspawn/sys/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>

namespace aplspawn::sys {

namespace fs = std::filesystem;

class OutputFile {
public:
    // Creates (or truncates) path, never following a symlink at it.
    static OutputFile create(const fs::path& path, mode_t mode = 0644);
    // Opens an existing regular file for appending at its current end.
    static OutputFile append(const fs::path& path);

    OutputFile() = default;
    OutputFile(OutputFile&&) = default;
    OutputFile& operator=(OutputFile&&) = default;

    void write(std::span<const unsigned char> data);
    // Cuts the file to size (0: empty) and continues writing there.
    void truncate(std::uint64_t size);
    // fsync: everything written is on disk when this returns.
    void sync();
    void close();

    std::uint64_t size() const { return size_; }
    const fs::path& path() const { return path_; }
    bool is_open() const { return fd_.valid(); }

private:
    OutputFile(fs::path path, UniqueFd fd, std::uint64_t size)
        : path_(std::move(path)), fd_(std::move(fd)), size_(size), flushed_(size) {}
    void start_writeback();

    fs::path path_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;     // bytes in the file
    std::uint64_t flushed_ = 0;  // writeback started up to here
    std::uint64_t waited_ = 0;   // writeback waited for up to here
};

// Reads the first `length` bytes of path in blocks of up to block_size and hands each to
// `block`. Throws Error when the file is shorter or unreadable.
void read_blocks(const fs::path& path, std::uint64_t length, std::size_t block_size,
                 const std::function<void(std::span<const unsigned char>)>& block);

}  // namespace aplspawn::sys
