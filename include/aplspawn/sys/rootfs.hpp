// A directory used as the root of every path operation on it: each path, absolute or relative, is
// resolved inside the directory by the kernel (openat2 with RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS). A symlink in a container image, absolute or climbing out with "../", is
// followed the way the container itself would follow it and never leads onto the host.
//
//   - Writes are atomic: a temp file in the same directory, then renameat(). A symlink where a file
//     is written is replaced, never followed.
//   - Owners and modes are set through file descriptors (fchown/fchmod), never by path.
//   - Only regular files are read, and only directories are listed: a FIFO or a device node in an
//     image is refused, not opened.
//
// Paths are the container's own ("/etc/hostname"); relative ones are taken from the root too.
// Errors are aplspawn::Error naming the operation and the container path ("write /etc/hostname:
// Is a directory"); callers add the root or container name as context.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::sys {

struct Owner {
    uid_t uid = 0;
    gid_t gid = 0;
    friend bool operator==(const Owner&, const Owner&) = default;
};

struct FileAttrs {
    mode_t mode = 0644;  // permission bits (07777)
    Owner owner;         // numbers as the container's own passwd/group define them
};

class RootFs {
public:
    // Opens `root`, a directory on the host. Throws Error when it is not a directory or when the
    // running kernel cannot resolve paths inside it (openat2 needs Linux 5.6 or newer).
    explicit RootFs(const std::filesystem::path& root);

    const std::filesystem::path& path() const { return path_; }
    int fd() const { return fd_.get(); }

    // Metadata. symlink_status does not follow the last component (a symlink is reported as
    // one); status follows every symlink, inside the root. nullopt when nothing is there (or a
    // symlink leads nowhere inside the root).
    std::optional<struct ::stat> symlink_status(std::string_view path) const;
    std::optional<struct ::stat> status(std::string_view path) const;
    // The target of a symlink; nullopt when path is missing or not a symlink.
    std::optional<std::string> read_link(std::string_view path) const;
    // A regular file with an execute bit, symlinks followed inside the root (as exec would).
    bool is_executable(std::string_view path) const;

    // The content of a regular file (symlinks followed inside the root); nullopt when missing.
    // Anything else there (a directory, FIFO, device) or a file over 16 MiB throws.
    std::optional<std::string> read_file(std::string_view path) const;
    // The names in a directory (symlinks followed inside the root), sorted, without "." and
    // ".."; empty when it does not exist.
    std::vector<std::string> list_dir(std::string_view path) const;

    // mkdir -p inside the root. Missing parents are created 0755 root:root, the last component
    // with attrs. An existing directory is left as it is (see set_attrs). A component that is a
    // symlink leading nowhere inside the root, or not a directory, throws an Error that says so.
    Change ensure_dir(std::string_view path, const FileAttrs& attrs = {0755, {}}) const;

    // Sets mode and owner of an existing directory or regular file (symlinks followed inside
    // the root), through an fd. Anything else (device, FIFO, socket) throws.
    Change set_attrs(std::string_view path, const FileAttrs& attrs) const;

    // Replaces path with a regular file holding content (temp file, fchown, fchmod, fsync,
    // renameat). The parent directory must exist. Change::unchanged, and nothing written, when
    // a regular file with this content, mode and owner is already there.
    Change write_file(std::string_view path, std::string_view content,
                      const FileAttrs& attrs = {}) const;

    // Makes path a symlink to target (atomically replacing a file or symlink there).
    Change symlink(std::string_view path, std::string_view target) const;

    // Removes a file or symlink (never a directory); Change::unchanged when nothing is there.
    Change remove(std::string_view path) const;
    // Removes an empty directory (a file or symlink there is removed as by remove(); a symlink
    // to a directory is never followed); Change::unchanged when nothing is there.
    Change remove_empty_dir(std::string_view path) const;

    // Used on a directory that is a layer of an overlay: makes path a whiteout (a character
    // device 0/0), which hides the entry of the layers below it in the merged view. A file,
    // symlink or whiteout there is replaced; a directory there throws.
    Change whiteout(std::string_view path) const;

    // An O_PATH descriptor of a directory inside the root (symlinks followed inside the root).
    // A program that must write by path (ssh-keygen) can be given /proc/PID/fd/N/NAME: the
    // kernel takes exactly this directory, whatever symlinks lie on the way to it.
    UniqueFd open_directory(std::string_view path) const;

private:
    // openat2 inside the root; -1 with errno set on failure (EAGAIN races are retried).
    int open_raw(std::string_view path, int flags, mode_t mode = 0) const;
    UniqueFd open_dir(std::string_view path, std::string_view what) const;
    UniqueFd open_regular(std::string_view path, bool follow, std::string_view what) const;
    // The entry `path` names, not followed: its parent directory (opened inside the root), its
    // name there and its lstat. nullopt when it (or its parent) does not exist.
    struct Entry {
        UniqueFd dir;
        std::string name;
        struct ::stat st {};
    };
    std::optional<Entry> find_entry(std::string_view path, const std::string& what) const;

    std::filesystem::path path_;
    UniqueFd fd_;
};

// Splits a container path into its parent and last component ("/etc/ssh/x" -> "/etc/ssh", "x").
// Throws Error when the last component is empty, "." or "..".
std::pair<std::string, std::string> split_last(std::string_view path);

}  // namespace aplspawn::sys
