// Files on the host: atomic writes (temp file, fsync, rename, fsync dir), reads, directories.
// For writes inside a container's root, see fleet's safe provisioning (never these).
#pragma once

#include "aplspawn/error.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace aplspawn::sys {

namespace fs = std::filesystem;

// Replaces path with content so that readers see the old or the new file, never a mix, and a
// crash leaves one of the two. The target is never followed if it is a symlink (it is replaced).
void write_file_atomic(const fs::path& path, std::string_view content, mode_t mode = 0644);

// Whole file. Throws Error "read PATH: strerror".
std::string read_file(const fs::path& path);
// nullopt when it does not exist; other errors throw.
std::optional<std::string> read_file_if_exists(const fs::path& path);

// mkdir -p; returns Change::changed when it created something. An existing non-directory throws.
Change ensure_dir(const fs::path& path, mode_t mode = 0755);

// fsync of a directory (after renames/unlinks inside it).
void sync_dir(const fs::path& dir);

// Free bytes available to us on the filesystem holding path (or its nearest existing parent).
std::uint64_t free_space(const fs::path& path);

}  // namespace aplspawn::sys
