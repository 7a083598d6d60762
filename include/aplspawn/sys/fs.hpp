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
// `mode` is the directory's own (as with mkdir -p -m); missing parents are made 0755.
Change ensure_dir(const fs::path& path, mode_t mode = 0755);

// A directory that only its owner may enter: created with `mode` when missing (missing parents
// 0755), and an existing one loses every permission bit outside `mode` (0750 -> 0700 for mode
// 0700). Returns its mode before, when it had to be tightened; nullopt when created or already so.
std::optional<mode_t> ensure_dir_restricted(const fs::path& path, mode_t mode = 0700);

// fsync of a directory (after renames/unlinks inside it).
void sync_dir(const fs::path& dir);

// Whether err means a full filesystem (ENOSPC, EDQUOT).
bool is_no_space(int err);

// The Error for a write under `dir` that found its filesystem full: "CONTEXT: no space left on
// the filesystem of DIR (N bytes free): free space there and run the command again". Keeps err.
Error no_space_error(std::string_view context, const fs::path& dir, int err = ENOSPC);

// e as it is, unless its errno says the filesystem is full: then e's message with " (no space
// left on the filesystem of DIR ...)" added. For errors of writes whose target is under dir.
Error with_no_space_hint(Error e, const fs::path& dir);

// Free bytes available to us on the filesystem holding path (or its nearest existing parent).
std::uint64_t free_space(const fs::path& path);

}  // namespace aplspawn::sys
