// Recursive removal that cannot escape: PARENT/NAME and everything below it, walked with
// openat/unlinkat relative to directory descriptors, never following a symlink (a symlink is
// removed, not its target) and never crossing into another mount (a mount point below is an
// Error and nothing under it is touched). For cleaning directories a container wrote into.
#pragma once

#include "aplspawn/error.hpp"

#include <filesystem>
#include <string>

namespace aplspawn::sys {

// Removes parent/name (name: one path component, not "." or ".."). Unchanged when it does not
// exist. Throws Error "remove PATH: ..." (a mount point inside, a permission problem, ...).
Change remove_tree_at(const std::filesystem::path& parent, const std::string& name);

// Whether parent/name exists (not following a final symlink).
bool exists_at(const std::filesystem::path& parent, const std::string& name);

}  // namespace aplspawn::sys
