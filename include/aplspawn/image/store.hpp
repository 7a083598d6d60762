// The local image store (path.localStore). Its layout (docs/getimage.md):
//
//   NAME -> by-sha256/HEX.img     the current version of image NAME: a relative symlink (or a
//                                 regular file put there by hand or by an older aplspawn)
//   by-sha256/HEX.img             versions, named by the SHA-256 of their bytes, read-only
//   by-sha256/HEX.json            what each version is: name, URL, checksums, validators, time
//   .partial/lock                 held by the getimage that is writing here
//   .partial/NAME.part            a download in progress: the bytes as published, so far
//   .partial/NAME.part.json       what that download is (URL, validators), to resume it safely
//   .partial/NAME.unpack          a compressed download's image, while it is decompressed
//
// NAME always resolves to a complete, verified image: a new version is written beside it and
// the symlink is replaced atomically (rename). A version is never modified once stored, so a
// loop device reading it keeps reading the same bytes; it is removed only when no loop device
// uses it and no name points at it.
#pragma once

#include "aplspawn/image/fetch.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::image {

namespace fs = std::filesystem;

// by-sha256/HEX.json
struct VersionInfo {
    std::string name;              // the image's store name (image.file_name)
    std::string sha256;            // of the stored bytes: the version's file name
    std::string published_sha256;  // of the bytes as published (differs for compressed images)
    std::string checksum_source;   // "image.sha256", the SHA256SUMS URL, or "none"
    std::string url;
    std::string compression;       // "none", "xz", "zstd", "gzip"
    std::uint64_t size = 0;        // stored bytes
    Validators validators;         // of the published file when it was downloaded
    std::int64_t stored_at = 0;    // unix seconds
    // A snapshot (aplspawn snapshot): which container of which group, on which image, made it.
    struct Snapshot {
        std::string container, group, base_image;
        friend bool operator==(const Snapshot&, const Snapshot&) = default;
    };
    std::optional<Snapshot> snapshot;
};

struct Version {
    fs::path path;                    // the file itself (symlink resolved)
    std::optional<VersionInfo> info;  // nullopt: not recorded by aplspawn (or no longer matching)
};

// .partial/NAME.part.json
struct PartialInfo {
    std::string url;
    Validators validators;
    std::optional<std::uint64_t> size;  // the published file's size
    std::string compression;
};

class Store {
public:
    Store(fs::path dir, std::string name);

    const fs::path& dir() const { return dir_; }
    const std::string& name() const { return name_; }
    fs::path current_path() const { return dir_ / name_; }
    fs::path versions_dir() const { return dir_ / "by-sha256"; }
    fs::path version_path(std::string_view sha256) const;
    fs::path partial_dir() const { return dir_ / ".partial"; }
    fs::path partial_path() const { return partial_dir() / (name_ + ".part"); }
    fs::path partial_info_path() const { return partial_dir() / (name_ + ".part.json"); }
    fs::path unpack_path() const { return partial_dir() / (name_ + ".unpack"); }

    // The current version of NAME; nullopt when there is none (or the symlink dangles).
    std::optional<Version> current() const;

    // The download in progress: its record and how many bytes it holds.
    struct Partial {
        PartialInfo info;
        std::uint64_t size = 0;
    };
    std::optional<Partial> partial() const;
    void write_partial_info(const PartialInfo& info) const;
    // Removes the download in progress (all of .partial/NAME.*); true if there was any.
    bool remove_partial() const;
    void remove_unpack() const;

    // Stores a complete, fsynced file as version info.sha256 (moving it into by-sha256/, or
    // dropping it when that version is already there), records info, and points NAME at it
    // (atomically). A file found at NAME that aplspawn did not record and that a loop device
    // uses is kept as a version of its own first. Returns the new current version.
    Version install(const fs::path& file, VersionInfo info) const;

    struct Pruned {
        std::vector<fs::path> removed;
        // Versions kept because loop devices use them: version, devices.
        std::vector<std::pair<fs::path, std::vector<std::string>>> in_use;
    };
    // Removes versions of NAME that are not current, not pointed at by any name in the store
    // and not used by any loop device.
    Pruned prune() const;

private:
    fs::path dir_;
    std::string name_;
};

// The names of the store's images (NAME.img, NAME.raw, ... at its top: files or symlinks, not
// the dot-files or by-sha256/), sorted.
std::vector<std::string> store_names(const fs::path& dir);

// SHA256SUMS in the store directory (so it can serve as an image repo, image.repo): sets the line
// of `name` ("HEX  NAME"), or removes it when sha256 is empty; other lines stay. Atomic.
void set_sums_line(const fs::path& dir, const std::string& name, const std::string& sha256);

// Loop devices whose backing file is `file` (same device and inode), e.g. "/dev/loop3".
std::vector<std::string> loop_devices_using(const fs::path& file);

// JSON of the records (exposed for tests).
std::string to_json(const VersionInfo& info);
std::optional<VersionInfo> version_info_from_json(std::string_view text);

}  // namespace aplspawn::image
